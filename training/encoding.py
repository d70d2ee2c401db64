"""Tokenised examples and their batches: what the training loop and the throughput benchmark feed a model.

The targets of the classification head (the 3 labels, or 5 star ratings summed into them), tokenisation
into an ``Encoded`` set, length-bucketed (or fixed) batching, padding a batch into tensors, and scoring a
set in length order. ``training.fit`` and ``training.bench`` use it; torch is imported only where a
tensor is built, so the module imports without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.data import LABELS
from training.inference import collapse_head

RATING_HEAD: tuple[int, ...] = (0, 0, 1, 2, 2)  # 1..5 stars -> negative, negative, neutral, positive x2


def head_to_label(target: str) -> tuple[int, ...] | None:
    """Which sentiment label each output of the classification head adds to (None: one output per label)."""
    if target == "label":
        return None
    if target == "rating":
        return RATING_HEAD
    raise ValueError(f"unknown target {target!r} (label | rating)")


def head_names(target: str) -> list[str]:
    return list(LABELS) if target == "label" else [f"{i} stars" for i in range(1, 6)]


def targets_of(frame: pd.DataFrame, target: str) -> np.ndarray:
    """The training targets: the label, or the star rating as a 0-based class."""
    if target == "label":
        return np.asarray(frame["label"].to_numpy(dtype=np.int64))
    ratings = pd.to_numeric(frame["rating"], errors="coerce").round()
    bad = ~ratings.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise ValueError(f"--target rating needs a 1-5 star rating on every row; {int(bad.sum())} lack one")
    return np.asarray(ratings.to_numpy(dtype=np.int64) - 1, dtype=np.int64)


@dataclass
class Encoded:
    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: np.ndarray  # the 3-class sentiment label (what is reported)
    targets: np.ndarray  # what the head is trained on (labels, or 0-based star ratings)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def encode(
    tokenizer: Any, frame: pd.DataFrame, text_input: str, max_len: int, target: str = "label"
) -> Encoded:
    titles = frame["title"].astype(str).tolist()
    texts = frame["text"].astype(str).tolist()
    if text_input == "title_text":
        enc = tokenizer(titles, texts, truncation=True, max_length=max_len)
    elif text_input == "text":
        enc = tokenizer(texts, truncation=True, max_length=max_len)
    else:
        raise ValueError(f"unknown text_input {text_input!r} (text | title_text)")
    types_ = enc.get("token_type_ids") if "token_type_ids" in tokenizer.model_input_names else None
    labels = frame["label"].to_numpy(dtype=np.int64)
    return Encoded(enc["input_ids"], types_, labels, targets_of(frame, target))


def make_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, padding: str, multiplier: int
) -> list[np.ndarray]:
    """Shuffled batches; with ``bucket`` padding, examples of similar length share a batch."""
    order = rng.permutation(len(lengths))
    if padding == "fixed":
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if padding != "bucket":
        raise ValueError(f"unknown padding {padding!r} (bucket | fixed)")
    mega = max(batch_size * max(multiplier, 1), batch_size)
    batches: list[np.ndarray] = []
    for start in range(0, len(order), mega):
        chunk = order[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(
    data: Encoded, idx: np.ndarray, pad_id: int, width: int | None = None
) -> tuple[dict[str, Any], Any]:
    import torch

    w = width or max(len(data.input_ids[i]) for i in idx)
    ids = torch.full((len(idx), w), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), w), dtype=torch.long)
    tt = torch.zeros((len(idx), w), dtype=torch.long) if data.token_type_ids is not None else None
    for row, i in enumerate(idx):
        seq = data.input_ids[i][:w]
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
        if tt is not None and data.token_type_ids is not None:
            tt[row, : len(seq)] = torch.tensor(data.token_type_ids[i][:w], dtype=torch.long)
    batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if tt is not None:
        batch["token_type_ids"] = tt
    return batch, torch.as_tensor(data.targets[idx], dtype=torch.long)


def predict_proba(
    model: Any, data: Encoded, batch_size: int, pad_id: int, head_map: Sequence[int] | None = None
) -> tuple[np.ndarray, float]:
    """Sentiment-label probabilities (in data order) and the mean unweighted cross-entropy of the head."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    model.eval()
    device = next(model.parameters()).device
    order = np.argsort(data.lengths, kind="stable")
    n_head = len(head_map) if head_map is not None else len(LABELS)
    probs = np.zeros((len(order), n_head), dtype=np.float64)
    total_loss = 0.0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch, labels = collate(data, idx, pad_id)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            probs[idx] = torch.softmax(logits, dim=-1).numpy()
    model.train()
    return collapse_head(probs, head_map, len(LABELS)), total_loss / max(len(order), 1)
