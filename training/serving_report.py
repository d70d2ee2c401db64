"""The served model's quality next to its teacher's: teacher, student (PyTorch fp32) and student (int8 ONNX).

``make train-serving`` ends here. The three rows are scored on the same split (test by default, the one
no choice was tuned on) with the same decision rule each model carries: the teacher from its committed
probabilities and its card's logit bias, the student through ``training.inference`` twice, once forced
onto PyTorch (the fp32 weights) and once as served (ONNX Runtime, int8). It prints a Markdown table
(accuracy, macro-F1, balanced accuracy, per-class recall) and writes the numbers as JSON: what the README's
model table shows and what the acceptance bar (student within 0.01 macro-F1 of the teacher, int8 within
0.005 of fp32) is read from.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from training.config import parse_config, setup_logging
from training.data import LABELS, items, load_reviews
from training.distill import PROBABILITY_COLUMNS, TEACHER_CARD, TEACHER_FILE, frame_keys, read_teacher
from training.metrics import apply_bias, classification_report
from training.outputs import write_json

log = logging.getLogger("training.serving_report")


@dataclass
class ServingReportConfig:
    """Score the teacher, the fp32 student and the served student on one split."""

    model: str = field(default=".artifacts/serving/model", metadata={"help": "the student model directory"})
    split: str = field(default=".artifacts/features/test", metadata={"help": "the split scored"})
    teacher: str = field(default=str(TEACHER_FILE), metadata={"help": "the teacher file"})
    card: str = field(default=str(TEACHER_CARD), metadata={"help": "the teacher's card (its logit bias)"})
    out: str = field(default=".artifacts/serving/report.json", metadata={"help": "the numbers, as JSON"})
    batch_size: int = field(default=32, metadata={"help": "scoring batch size"})


def summary(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, balanced accuracy and per-class recall of one model."""
    rep = classification_report(y, predicted)
    return {
        "accuracy": rep["accuracy"],
        "macro_f1": rep["macro_f1"],
        "balanced_accuracy": rep["balanced_accuracy"],
        "recall": {lab: rep["per_class"][lab]["recall"] for lab in LABELS},
        "n": len(y),
    }


def teacher_predictions(frame: pd.DataFrame, teacher: pd.DataFrame, bias: list[float]) -> np.ndarray:
    """The teacher's labels for ``frame`` from its committed probabilities (every row must be covered)."""
    by_text = teacher.drop_duplicates("text_sha").set_index("text_sha")
    keys = frame_keys(frame)["text_sha"]
    missing = int((~keys.isin(by_text.index)).sum())
    if missing:
        raise ValueError(f"the teacher file lacks {missing} of the {len(frame)} reviews scored")
    probs = by_text.loc[keys, list(PROBABILITY_COLUMNS)].to_numpy(dtype=np.float64)
    return apply_bias(probs, bias)


def student_predictions(
    model: str, frame: pd.DataFrame, backend: str, batch_size: int
) -> tuple[np.ndarray, str]:
    """The student's labels through the serving code on one backend (``torch`` | ``auto``: as served)."""
    from training.inference import SentimentPredictor

    predictor = SentimentPredictor(model, batch_size=batch_size, backend=backend)
    started = time.perf_counter()
    probs = predictor.predict_proba(items(frame))
    log.info("%s scored %d reviews in %.1f s", backend, len(frame), time.perf_counter() - started)
    return np.asarray(probs.argmax(axis=1)), predictor.backend or "torch"


def markdown(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| model | accuracy | macro-F1 | balanced acc. | recall neg / neu / pos |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        recall = " / ".join(f"{r['recall'][lab]:.3f}" for lab in LABELS)
        scores = " | ".join(f"{r[k]:.4f}" for k in ("accuracy", "macro_f1", "balanced_accuracy"))
        lines.append(f"| {name} | {scores} | {recall} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(ServingReportConfig, argv)
    frame = load_reviews(cfg.split)
    y = frame["label"].to_numpy()
    card = json.loads(Path(cfg.card).read_text(encoding="utf-8"))
    rows: dict[str, dict[str, Any]] = {
        "teacher": summary(y, teacher_predictions(frame, read_teacher(cfg.teacher), card["logit_bias"]))
    }
    fp32, _ = student_predictions(cfg.model, frame, "torch", cfg.batch_size)
    rows["student fp32 (PyTorch)"] = summary(y, fp32)
    served, backend = student_predictions(cfg.model, frame, "auto", cfg.batch_size)
    rows[f"student as served ({backend})"] = summary(y, served)
    report = {
        "split": cfg.split,
        "rows": rows,
        "label_agreement_served_vs_fp32": float(np.mean(served == fp32)),
        "student_minus_teacher_macro_f1": rows["student fp32 (PyTorch)"]["macro_f1"]
        - rows["teacher"]["macro_f1"],
        "served_minus_fp32_macro_f1": rows[f"student as served ({backend})"]["macro_f1"]
        - rows["student fp32 (PyTorch)"]["macro_f1"],
    }
    write_json(Path(cfg.out), report)
    print(markdown(rows))
    print(
        f"student - teacher macro-F1: {report['student_minus_teacher_macro_f1']:+.4f}; "
        f"served - fp32: {report['served_minus_fp32_macro_f1']:+.4f}; "
        f"same label on {report['label_agreement_served_vs_fp32']:.1%} of {len(frame)} reviews"
    )
    return report


if __name__ == "__main__":
    main()
