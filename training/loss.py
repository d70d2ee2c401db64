"""The training loss: class weights for an imbalanced label set and a weighted cross-entropy / focal loss.

Kept apart from the loop (``training.fit``) because these are the pieces a change of objective touches.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def class_weights(labels: np.ndarray, mode: str, n_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    balanced = counts.sum() / (n_classes * counts)
    if mode == "none":
        return np.ones(n_classes)
    if mode == "balanced":
        return np.asarray(balanced)
    if mode == "sqrt":
        return np.asarray(np.sqrt(balanced))
    raise ValueError(f"unknown class_weighting {mode!r} (none | balanced | sqrt)")


def loss_fn(logits: Any, labels: Any, weights: Any, gamma: float, smoothing: float) -> Any:
    import torch
    import torch.nn.functional as F  # noqa: N812

    if gamma <= 0:
        return F.cross_entropy(logits, labels, weight=weights, label_smoothing=smoothing)
    logp = F.log_softmax(logits.float(), dim=-1).gather(1, labels[:, None]).squeeze(1)
    focal = -((1 - logp.exp()) ** gamma) * logp
    w = weights[labels] if weights is not None else torch.ones_like(focal)
    return (w * focal).sum() / w.sum()
