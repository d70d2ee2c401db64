"""Score the featurized splits with the best ensemble and write its probabilities: the teacher file.

The servable student (``make train-serving``) learns from these probabilities, so the teacher's members
-- large encoders that take a GPU or hours of CPU to rebuild -- are needed once, here, and never again:
the output is a small CSV (``training/teacher/probabilities.csv.gz``, one row per review of every
split, keyed by ``review_id`` and a hash of the text) plus a card (``teacher.json``) recording the
members, the weights and logit bias tuned on validation, and the teacher's own validation and test
scores. Both are committed; ``make teacher`` rebuilds them from trained member directories.

Member weights and bias are tuned on validation only (``training.ensemble.search_weights``); test rows
are scored for the record (the student's report compares with them) and are never trained on.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from training.config import parse_config, setup_logging
from training.data import load_reviews
from training.distill import PROBABILITY_COLUMNS, TEACHER_CARD, TEACHER_FILE, frame_keys, read_teacher
from training.ensemble import LazyMember, member_scores, search_weights
from training.metrics import classification_report
from training.outputs import write_json

log = logging.getLogger("training.teacher")
SPLITS = ("train", "validation", "test")


@dataclass
class TeacherConfig:
    """Score the splits with each member, mix them with weights tuned on validation, write the file."""

    models: str = field(default="", metadata={"help": "comma-separated member model directories"})
    features: str = field(default=".artifacts/features", metadata={"help": "featurize output directory"})
    out: str = field(default=str(TEACHER_FILE), metadata={"help": "the teacher file (.csv.gz)"})
    card: str = field(default=str(TEACHER_CARD), metadata={"help": "the teacher's card (JSON)"})
    score_cache: str = field(default=".artifacts/scores", metadata={"help": "member score cache directory"})
    weight_step: float = field(default=0.1, metadata={"help": "grid step of the member weights"})
    batch_size: int = field(default=64, metadata={"help": "scoring batch size"})
    precision: str = field(
        default="bf16", metadata={"help": "bf16 (autocast, CPUs with AVX512-BF16 / GPUs) | fp32"}
    )
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})
    recipe: str = field(default="", metadata={"help": "how the members were trained (recorded in the card)"})


@contextmanager
def _autocast(precision: str, device: str) -> Iterator[None]:
    if precision != "bf16":
        yield
        return
    import torch

    kind = "cuda" if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else "cpu"
    with torch.autocast(kind, dtype=torch.bfloat16):
        yield


def teacher_frame(frame: pd.DataFrame, split: str, probs: np.ndarray) -> pd.DataFrame:
    """One row per review: its keys, its split and the teacher's probabilities (5 decimals, rows sum to 1)."""
    rounded = np.round(probs / probs.sum(axis=1, keepdims=True), 5)
    rounded[:, -1] = np.round(1.0 - rounded[:, :-1].sum(axis=1), 5)  # keep the sum exact after rounding
    out = frame_keys(frame)
    out["split"] = split
    for i, col in enumerate(PROBABILITY_COLUMNS):
        out[col] = rounded[:, i]
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(TeacherConfig, argv)
    sources = [m.strip() for m in cfg.models.split(",") if m.strip()]
    if not sources:
        raise ValueError("--models needs at least one model directory")
    t0 = time.perf_counter()
    frames = {s: load_reviews(Path(cfg.features) / s) for s in SPLITS}
    members = [LazyMember(src, cfg.device, cfg.batch_size) for src in sources]
    scores: dict[str, list[np.ndarray]] = {}
    with _autocast(cfg.precision, cfg.device):
        for split in ("validation", "test", "train"):
            started = time.perf_counter()
            scores[split] = [member_scores(m, frames[split], cfg.score_cache) for m in members]
            log.info(
                "scored %s (%d reviews) in %.0f s", split, len(frames[split]), time.perf_counter() - started
            )
    y_val = frames["validation"]["label"].to_numpy()
    weights, bias, val_f1 = search_weights(scores["validation"], y_val, cfg.weight_step)
    log.info("teacher weights %s bias %s val_macro_f1 %.4f", weights, bias, val_f1)
    mixed = {s: np.asarray(sum(w * p for w, p in zip(weights, scores[s], strict=True))) for s in SPLITS}
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat([teacher_frame(frames[s], s, mixed[s]) for s in SPLITS], ignore_index=True)
    table.to_csv(out, index=False, compression={"method": "gzip", "mtime": 0})
    read_teacher(out)  # what training will read back: fail here, not in a training job
    from training.metrics import apply_bias

    reports = {}
    for split in ("validation", "test"):
        y = frames[split]["label"].to_numpy()
        reports[split] = {
            "raw": classification_report(y, mixed[split].argmax(axis=1)),
            "tuned": classification_report(y, apply_bias(mixed[split], bias)),
        }
    card = {
        "members": [{"source": src, "weight": w} for src, w in zip(sources, weights, strict=True)],
        "logit_bias": bias,
        "recipe": cfg.recipe,
        "rows": {s: len(frames[s]) for s in SPLITS},
        "file": out.name,
        "file_sha256": _sha256(out),
        "file_bytes": out.stat().st_size,
        **reports,
        "seconds": round(time.perf_counter() - t0, 1),
        "config": asdict(cfg),
    }
    write_json(Path(cfg.card), card)
    t = reports["test"]["tuned"]
    log.info(
        "teacher file %s (%d KB): test acc %.4f macro-F1 %.4f",
        out,
        out.stat().st_size // 1024,
        t["accuracy"],
        t["macro_f1"],
    )
    return card


if __name__ == "__main__":
    main()
