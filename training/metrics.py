"""Classification metrics and decision tuning for macro-F1, in numpy.

Train, evaluate, the baselines and the candidate search report the same numbers (accuracy, macro-F1,
per-class precision / recall / F1, balanced accuracy, confusion matrix, majority baseline) and tune the
same decision rule: a per-class logit bias (equivalently, class priors) chosen on the validation split to
maximise macro-F1. It is never tuned on the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.data import LABELS


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(LABELS)) -> float:
    return float(_prf(confusion_matrix(y_true, y_pred, n_classes))[2].mean())


def classification_report(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str] = LABELS,
) -> dict[str, Any]:
    """Accuracy, macro / weighted F1, balanced accuracy, per-class P/R/F1 and the confusion matrix."""
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    n = len(labels)
    cm = confusion_matrix(yt, yp, n)
    precision, recall, f1 = _prf(cm)
    support = cm.sum(axis=1)
    total = max(int(support.sum()), 1)
    present = support > 0
    return {
        "n": len(yt),
        "accuracy": float(np.trace(cm) / total),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / total),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            lab: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, lab in enumerate(labels)
        },
        "confusion_matrix": {"labels": list(labels), "rows_true_cols_pred": cm.tolist()},
    }


def majority_baseline(
    y_true: Sequence[int] | np.ndarray,
    majority_class: int | None = None,
    labels: Sequence[str] = LABELS,
) -> dict[str, Any]:
    """Metrics of always predicting the majority class (of ``y_true`` unless given, e.g. from train)."""
    yt = np.asarray(y_true, dtype=np.int64)
    if majority_class is None:
        majority_class = int(np.bincount(yt, minlength=len(labels)).argmax()) if len(yt) else 0
    rep = classification_report(yt, np.full_like(yt, majority_class), labels)
    return {
        "predict": labels[majority_class],
        "accuracy": rep["accuracy"],
        "macro_f1": rep["macro_f1"],
        "balanced_accuracy": rep["balanced_accuracy"],
    }


def apply_bias(probs: np.ndarray, bias: Sequence[float] | np.ndarray) -> np.ndarray:
    """Argmax of log-probabilities plus a per-class bias."""
    return np.asarray(np.argmax(np.log(np.clip(probs, 1e-12, 1.0)) + np.asarray(bias), axis=1))


def tune_logit_bias(
    probs: np.ndarray,
    y_true: Sequence[int] | np.ndarray,
    *,
    span: float = 3.0,
    step: float = 0.05,
    rounds: int = 3,
) -> tuple[list[float], float]:
    """Coordinate ascent on a per-class logit bias (last class fixed at 0) maximising macro-F1.

    Returns (bias, macro_f1). Ties prefer the smallest |bias|, so an uninformative search keeps 0.
    """
    yt = np.asarray(y_true, dtype=np.int64)
    n_classes = probs.shape[1]
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    bias = np.zeros(n_classes)
    grid = np.round(np.arange(-span, span + step / 2, step), 6)
    grid = grid[np.argsort(np.abs(grid), kind="stable")]
    best = macro_f1(yt, np.argmax(logp, axis=1), n_classes)
    for _ in range(rounds):
        improved = False
        for c in range(n_classes - 1):
            for value in grid:
                trial = bias.copy()
                trial[c] = value
                score = macro_f1(yt, np.argmax(logp + trial, axis=1), n_classes)
                if score > best + 1e-9:
                    best, bias, improved = score, trial, True
        if not improved:
            break
    return [float(b) for b in bias], float(best)


def tune_ensemble(
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    y_true: Sequence[int] | np.ndarray,
    weights: Sequence[float] | None = None,
) -> tuple[float, list[float], float]:
    """Pick the mixing weight w (probs = w*a + (1-w)*b) and logit bias that maximise validation macro-F1."""
    grid = list(weights) if weights is not None else [round(x, 2) for x in np.arange(0.0, 1.0001, 0.1)]
    best: tuple[float, list[float], float] = (1.0, [0.0] * probs_a.shape[1], -1.0)
    for w in grid:
        bias, score = tune_logit_bias(w * probs_a + (1 - w) * probs_b, y_true, step=0.1, rounds=2)
        if score > best[2] + 1e-9:
            best = (float(w), bias, score)
    return best
