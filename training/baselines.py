"""Train the fast TF-IDF + logistic-regression candidate as a complete, servable model directory.

The course's quick baseline was BlazingText; ours trains in well under a minute on 2 cores, gives the
reference number every transformer run must beat, and is one of the candidates of the search
(``training.automl``). Its model directory has the same layout as a transformer's (label map, decision,
serving code, metrics), so evaluate, the gate and the endpoint treat both alike.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from training.config import env, parse_config, setup_logging
from training.data import label_map, load_reviews
from training.inference import DECISION_FILE, LABEL_MAP_FILE, softmax
from training.linear import LinearCandidate, LinearParams
from training.metrics import apply_bias, classification_report, majority_baseline, tune_logit_bias
from training.model_io import METRICS_FILE, install_serving_code

log = logging.getLogger("training.baselines")


@dataclass
class BaselineConfig:
    """Train the TF-IDF + logistic-regression sentiment model."""

    train: str = field(
        default_factory=lambda: env("SM_CHANNEL_TRAIN", ".artifacts/features/train"),
        metadata={"help": "training split"},
    )
    validation: str = field(
        default_factory=lambda: env("SM_CHANNEL_VALIDATION", ".artifacts/features/validation"),
        metadata={"help": "validation split (decision tuning)"},
    )
    test: str = field(
        default_factory=lambda: env("SM_CHANNEL_TEST", ".artifacts/features/test"),
        metadata={"help": "test split (optional, reported only)"},
    )
    model_dir: str = field(
        default_factory=lambda: env("SM_MODEL_DIR", ".artifacts/linear-model"),
        metadata={"help": "output model directory"},
    )
    output_data_dir: str = field(
        default_factory=lambda: env("SM_OUTPUT_DATA_DIR", ".artifacts/linear-output"),
        metadata={"help": "test predictions and metrics copy"},
    )
    text_input: str = field(default="title_text", metadata={"help": "text | title_text"})
    ngram_max: int = field(default=2, metadata={"help": "largest word n-gram"})
    min_df: int = field(default=2, metadata={"help": "minimum document frequency of a feature"})
    max_features: int = field(default=100_000, metadata={"help": "vocabulary cap"})
    c: float = field(default=4.0, metadata={"help": "inverse regularisation strength"})
    class_weight: str = field(default="balanced", metadata={"help": "balanced | none"})
    tune_decision: bool = field(default=True, metadata={"help": "tune logit bias for macro-F1 on validation"})
    save_test_predictions: bool = field(default=True, metadata={"help": "write test_predictions.parquet"})


def train_linear(
    cfg: BaselineConfig,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    test_df: pd.DataFrame | None,
) -> dict[str, Any]:
    """Fit, tune the decision on validation, save the model directory, report validation and test."""
    from training.outputs import prediction_frame, write_json

    t0 = time.perf_counter()
    params = LinearParams(
        ngram_max=cfg.ngram_max,
        min_df=cfg.min_df,
        max_features=cfg.max_features,
        c=cfg.c,
        class_weight=cfg.class_weight,
        text_input=cfg.text_input,
    )
    model = LinearCandidate(params).fit(train_df)
    fit_seconds = time.perf_counter() - t0
    y_val = val_df["label"].to_numpy()
    val_probs = model.predict_proba(val_df)
    bias = tune_logit_bias(val_probs, y_val)[0] if cfg.tune_decision else [0.0, 0.0, 0.0]
    decision = {
        "model_type": "linear",
        "text_input": cfg.text_input,
        "max_seq_length": 0,
        "ensemble_weight": 0.0,
        "logit_bias": bias,
    }
    model_dir = Path(cfg.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir)
    write_json(model_dir / LABEL_MAP_FILE, label_map())
    write_json(model_dir / DECISION_FILE, decision)
    install_serving_code(model_dir)
    metrics: dict[str, Any] = {
        "status": "ok",
        "model_type": "linear",
        "train_seconds": round(fit_seconds, 2),
        "rows": {
            "train": len(train_df),
            "validation": len(val_df),
            "test": 0 if test_df is None else len(test_df),
        },
        "validation": {
            "raw": classification_report(y_val, val_probs.argmax(axis=1)),
            "tuned": classification_report(y_val, apply_bias(val_probs, bias)),
        },
        "decision": decision,
        "config": asdict(cfg),
    }
    if test_df is not None and len(test_df):
        y_test = test_df["label"].to_numpy()
        raw = model.predict_proba(test_df)
        adjusted = softmax(np.log(np.clip(raw, 1e-12, 1.0)) + np.asarray(bias))
        metrics["test"] = {
            "raw": classification_report(y_test, raw.argmax(axis=1)),
            "tuned": classification_report(y_test, adjusted.argmax(axis=1)),
            "majority_baseline": majority_baseline(y_test, int(np.bincount(train_df["label"]).argmax())),
        }
        if cfg.save_test_predictions:
            out = Path(cfg.output_data_dir)
            out.mkdir(parents=True, exist_ok=True)
            prediction_frame(test_df, raw, adjusted, "test").to_parquet(
                out / "test_predictions.parquet", index=False
            )
    write_json(model_dir / METRICS_FILE, metrics)
    write_json(Path(cfg.output_data_dir) / METRICS_FILE, metrics)
    val_t = metrics["validation"]["tuned"]
    log.info(
        "linear val_acc: %.4f val_macro_f1: %.4f (fit %.1f s)",
        val_t["accuracy"],
        val_t["macro_f1"],
        fit_seconds,
    )
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(BaselineConfig, argv)
    train_df = load_reviews(cfg.train)
    val_df = load_reviews(cfg.validation)
    test_df = load_reviews(cfg.test) if cfg.test and Path(cfg.test).exists() else None
    return train_linear(cfg, train_df, val_df, test_df)


if __name__ == "__main__":
    main()
