"""The fast TF-IDF + logistic-regression candidate (the course's BlazingText baseline, on CPU).

It is a model of its own (``model_type: linear``) and half of the transformer + linear ensemble; both are
exported to ``linear_model.json`` (plain numbers, no pickle) and scored by ``training.inference``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.inference import LINEAR_MODEL_FILE, linear_input

TOKEN_PATTERN = r"(?u)\b\w\w+\b"


@dataclass(frozen=True)
class LinearParams:
    ngram_max: int = 2
    min_df: int = 2
    max_features: int = 100_000
    c: float = 4.0
    class_weight: str = "balanced"  # "balanced" or "none"
    text_input: str = "title_text"


def documents(frame: pd.DataFrame, text_input: str) -> list[str]:
    return [
        linear_input(t, x, text_input)
        for t, x in zip(frame["title"].astype(str), frame["text"].astype(str), strict=True)
    ]


class LinearCandidate:
    """Fit with scikit-learn, predict with scikit-learn, export to the JSON that serving reads."""

    def __init__(self, params: LinearParams) -> None:
        self.params = params
        self.vectorizer: Any = None
        self.classifier: Any = None

    def fit(self, frame: pd.DataFrame) -> LinearCandidate:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        p = self.params
        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, p.ngram_max),
            min_df=p.min_df,
            max_features=p.max_features,
            sublinear_tf=True,
            lowercase=True,
            token_pattern=TOKEN_PATTERN,
            dtype=np.float64,
        )
        x = self.vectorizer.fit_transform(documents(frame, p.text_input))
        self.classifier = LogisticRegression(
            C=p.c,
            max_iter=2000,
            class_weight=None if p.class_weight == "none" else p.class_weight,
        )
        self.classifier.fit(x, frame["label"].to_numpy())
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.vectorizer.transform(documents(frame, self.params.text_input))
        return np.asarray(self.classifier.predict_proba(x))

    def export(self) -> dict[str, Any]:
        vocab = {str(k): int(v) for k, v in self.vectorizer.vocabulary_.items()}
        return {
            "format": "tfidf-logreg/v1",
            "vocabulary": vocab,
            "idf": [round(float(v), 7) for v in self.vectorizer.idf_],
            "coef": [[round(float(v), 7) for v in row] for row in self.classifier.coef_],
            "intercept": [float(v) for v in self.classifier.intercept_],
            "classes": [int(c) for c in self.classifier.classes_],
            "ngram_range": [1, self.params.ngram_max],
            "lowercase": True,
            "sublinear_tf": True,
            "token_pattern": TOKEN_PATTERN,
            "text_input": self.params.text_input,
            "params": self.params.__dict__,
        }

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / LINEAR_MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.export(), separators=(",", ":")), encoding="utf-8")
        return path
