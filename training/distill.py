"""Knowledge distillation: the teacher's class probabilities as soft labels for a small student.

The best model the project has (an ensemble of large encoders) is too slow to serve on CPU, and its members
need a GPU or hours of CPU to rebuild. Its *probabilities* are small: ``training.teacher`` writes them once
per review (``TEACHER_FILE``, committed to the repository), and any later training run -- ``make
train-serving``, the pipeline's train step on AWS or on the local cloud -- mixes them with the hard labels
so that a small encoder learns the teacher's finer view of each review (how neutral a 3-star review
really is). This module reads that file, attaches it to a training frame, and defines the loss.

The file names each review by ``review_id`` and a hash of its title and text; rows are matched by the hash
(the teacher's probabilities depend on the text alone), so an id that names another text in another copy
of the data gets no soft label, the same review under a lake id does, and rows without one (new reviews,
other channels) are trained on their hard label only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.data import LABELS

log = logging.getLogger("training.train")

#: The teacher's probabilities, shipped with the training code (``reviewsense.codepublish`` publishes it).
TEACHER_FILE = Path(__file__).with_name("teacher") / "probabilities.csv.gz"
#: Their provenance: members, weights, logit bias, validation / test scores of the teacher.
TEACHER_CARD = Path(__file__).with_name("teacher") / "teacher.json"
PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"p_{name}" for name in LABELS)
KEY_COLUMNS: tuple[str, ...] = ("review_id", "text_sha")


def text_sha(title: object, text: object) -> str:
    """A short hash of a review's title and text: the same review id with another text is another review."""
    raw = f"{'' if title is None else title}\x1f{'' if text is None else text}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]


def frame_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """``review_id`` and ``text_sha`` of every row of a canonical review frame."""
    shas = [
        text_sha(t, x) for t, x in zip(frame["title"].astype(str), frame["text"].astype(str), strict=True)
    ]
    return pd.DataFrame({"review_id": frame["review_id"].astype(str).to_numpy(), "text_sha": shas})


def resolve_teacher_path(value: str) -> Path | None:
    """The teacher file a hyperparameter names: ``""``/``none`` = off, ``packaged`` = the shipped file.

    A relative path is looked up from the working directory, then from the source directory (where
    SageMaker script mode unpacks the training code, so ``training/teacher/...`` works on AWS too).
    """
    name = value.strip()
    if name.lower() in {"", "none", "off", "false"}:
        return None
    if name == "packaged":
        return TEACHER_FILE
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    from_source = Path(__file__).resolve().parent.parent / path
    return from_source if from_source.exists() else path


def read_teacher(path: str | Path) -> pd.DataFrame:
    """The teacher file, checked: key columns, one probability column per label, rows summing to 1."""
    frame = pd.read_csv(path, dtype={"review_id": str, "text_sha": str, "split": str})
    missing = [c for c in (*KEY_COLUMNS, *PROBABILITY_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"teacher file {path} lacks columns {missing}")
    probs = frame[list(PROBABILITY_COLUMNS)].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(probs)) or np.any(probs < 0) or np.any(np.abs(probs.sum(axis=1) - 1.0) > 1e-3):
        raise ValueError(f"teacher file {path}: every row must hold probabilities summing to 1")
    if frame.duplicated(list(KEY_COLUMNS)).any():
        raise ValueError(f"teacher file {path}: duplicate review_id / text_sha rows")
    return frame


def attach_teacher(frame: pd.DataFrame, teacher: pd.DataFrame) -> np.ndarray:
    """Soft labels aligned with ``frame``'s rows: shape (rows, labels), NaN where the teacher has none."""
    keys = frame_keys(frame)
    # the teacher's probabilities depend on the text alone: join on its hash, so the same review under
    # another id (the lake names rows by channel and upload) gets them too
    by_text = teacher.drop_duplicates("text_sha")[["text_sha", *PROBABILITY_COLUMNS]]
    merged = keys.merge(by_text, on="text_sha", how="left")
    soft = merged[list(PROBABILITY_COLUMNS)].to_numpy(dtype=np.float64)
    covered = int(np.isfinite(soft[:, 0]).sum())
    log.info(
        "teacher soft labels for %d of %d training rows (the rest: hard labels only)", covered, len(frame)
    )
    return np.asarray(soft, dtype=np.float64)


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The teacher's distribution at a temperature: p_i^(1/T), renormalised (T > 1 softens)."""
    out = np.full(probs.shape, np.nan)
    rows = np.isfinite(probs).all(axis=1)  # rows without a teacher stay NaN
    logp = np.log(np.clip(probs[rows], 1e-8, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    sharp = np.exp(logp)
    out[rows] = sharp / sharp.sum(axis=1, keepdims=True)
    return out


def distillation_loss(
    logits: Any,
    labels: Any,
    soft: Any,
    has_soft: Any,
    *,
    hard_loss: Any,
    alpha: float,
    temperature: float,
) -> Any:
    """``alpha`` x hard-label loss + (1 - alpha) x T^2 x KL(teacher_T || student_T), on rows with a teacher.

    ``soft`` holds the teacher's probabilities already at temperature ``temperature`` (rows without a
    teacher are ignored through ``has_soft``); the T^2 factor keeps the soft term's gradients on the scale
    of the hard term's whatever the temperature (Hinton et al., 2015).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    if not bool(has_soft.any()):
        return hard_loss
    log_student = F.log_softmax(logits.float() / temperature, dim=-1)
    kl = (soft * (torch.log(soft.clamp_min(1e-8)) - log_student)).sum(dim=-1)
    soft_term = (kl * has_soft).sum() / has_soft.sum() * temperature**2
    return alpha * hard_loss + (1.0 - alpha) * soft_term


def soft_batch(soft: np.ndarray | None, idx: Sequence[int] | np.ndarray) -> tuple[Any, Any] | None:
    """Tensors (teacher probabilities, NaN rows zeroed; row mask) for one batch; None without a teacher."""
    if soft is None:
        return None
    import torch

    rows = soft[np.asarray(idx)]
    mask = np.isfinite(rows[:, 0])
    return torch.as_tensor(np.nan_to_num(rows, nan=0.0), dtype=torch.float32), torch.as_tensor(
        mask, dtype=torch.float32
    )
