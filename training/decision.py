"""The decision rule saved with a fine-tuned model, tuned on validation only (never test).

Optionally fits the TF-IDF + logistic-regression model and picks the weight of the transformer in a mix of
the two; tunes per-class logit biases for macro-F1. The result is ``decision.json`` in the model
directory, which the serving code (``training.inference``) applies to every prediction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.data import LABELS
from training.metrics import apply_bias, classification_report, tune_ensemble, tune_logit_bias
from training.outputs import format_metrics
from training.train_config import TrainConfig

log = logging.getLogger("training.train")  # the run's log lines keep the entry point's logger name


@dataclass
class Decision:
    """The tuned rule (``decision.json``), validation before / after it, and the linear model it mixes in."""

    rule: dict[str, Any]
    val_raw: dict[str, Any]
    val_tuned: dict[str, Any]
    linear_model: Any = None  # a fitted training.linear.LinearCandidate when the rule is an ensemble

    @property
    def is_ensemble(self) -> bool:
        return bool(self.rule["model_type"] == "ensemble")


def tune_decision(
    cfg: TrainConfig,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    val_probs: np.ndarray,
    y_val: np.ndarray,
    head_map: Sequence[int] | None,
) -> Decision:
    """The ensemble weight and logit bias that maximise validation macro-F1 (as ``cfg`` allows)."""
    rule: dict[str, Any] = {
        "model_type": "transformer",
        "text_input": cfg.text_input,
        "max_seq_length": cfg.max_seq_length,
        "head_to_label": list(head_map) if head_map is not None else None,
        "ensemble_weight": 1.0,
        "logit_bias": [0.0] * len(LABELS),
    }
    val_raw = classification_report(y_val, val_probs.argmax(axis=1))
    chosen_val = val_probs
    linear_model = None
    if cfg.ensemble_linear:
        from training.linear import LinearCandidate, LinearParams

        t_lin = time.perf_counter()
        linear_model = LinearCandidate(LinearParams(c=cfg.linear_c, text_input=cfg.text_input)).fit(train_df)
        lin_val = linear_model.predict_proba(val_df)
        w, bias, score = _ensemble_weight(val_probs, lin_val, y_val, cfg.tune_decision)
        log.info(
            "linear model fitted in %.1f s; ensemble weight %.2f val_macro_f1 %.4f",
            time.perf_counter() - t_lin,
            w,
            score,
        )
        if w < 1.0:
            rule.update(model_type="ensemble", ensemble_weight=w, logit_bias=bias)
            chosen_val = w * val_probs + (1 - w) * lin_val
        else:
            rule["logit_bias"] = bias
    elif cfg.tune_decision:
        rule["logit_bias"], _ = tune_logit_bias(val_probs, y_val)
    val_tuned = classification_report(y_val, apply_bias(chosen_val, rule["logit_bias"]))
    log.info(
        "validation after decision tuning: %s",
        format_metrics({"val_acc": val_tuned["accuracy"], "val_macro_f1_tuned": val_tuned["macro_f1"]}),
    )
    return Decision(rule, val_raw, val_tuned, linear_model)


def _ensemble_weight(
    val_probs: np.ndarray, lin_val: np.ndarray, y_val: np.ndarray, tune_bias: bool
) -> tuple[float, list[float], float]:
    """(transformer weight, logit bias, validation macro-F1); without ``tune_bias`` the bias stays 0."""
    if tune_bias:
        return tune_ensemble(val_probs, lin_val, y_val)
    grid = [round(x, 2) for x in np.arange(0.0, 1.0001, 0.1)]
    scores = [
        classification_report(y_val, (g * val_probs + (1 - g) * lin_val).argmax(1))["macro_f1"] for g in grid
    ]
    return grid[int(np.argmax(scores))], [0.0] * len(LABELS), max(scores)
