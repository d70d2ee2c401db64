"""What a training run writes besides the model: JSON metrics, per-example predictions, metric log lines.

Shared by every trainer (``training.finetune``, ``training.baselines``, ``training.ensemble``) and by
``training.evaluate``, so their outputs have one format: the metrics JSON tolerates numpy values, the
prediction frame carries the product facets that the bias and monitoring work read, and metric lines
(``val_macro_f1: 0.7012``) match the SageMaker metric-definition regexes
(``chalicelib.domain.training_health.METRIC_DEFINITIONS``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.data import FACET_COLUMNS, LABELS


def format_metrics(values: dict[str, float | int]) -> str:
    """``key: value`` pairs on one line, the shape the metric-definition regexes parse."""
    return " ".join(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n", encoding="utf-8"
    )


def prediction_frame(frame: pd.DataFrame, raw: np.ndarray, adjusted: np.ndarray, split: str) -> pd.DataFrame:
    """Per-example predictions with the product facets (input of the bias and monitoring work)."""
    cols = ["review_id", *FACET_COLUMNS, "rating", "label"]
    out = frame[[c for c in cols if c in frame.columns]].copy()
    out["split"] = split
    out["label_name"] = [LABELS[i] for i in out["label"]]
    out["pred"] = adjusted.argmax(axis=1)
    out["pred_name"] = [LABELS[i] for i in out["pred"]]
    out["pred_raw"] = raw.argmax(axis=1)
    for i, name in enumerate(LABELS):
        out[f"prob_{name}"] = adjusted[:, i]
    return out
