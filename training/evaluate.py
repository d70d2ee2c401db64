"""Evaluate a model directory or model.tar.gz on labelled reviews and write evaluation.json.

The pipeline's evaluate step (a Processing job) and ``reviewsense evaluate --model PATH --data PATH
[--json]`` run this. The data may be a featurize split, the curated Parquet lake or the raw Kaggle CSV
as-is. Scoring goes through the model's own serving code (``training.inference``), so the numbers are
those of the deployed artifact, tuned decision included. With ``--json`` exactly one JSON object is
printed on stdout (logs go to stderr).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (SageMaker Processing: python evaluate.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from training.config import env, parse_config, setup_logging
from training.data import LABELS, items, load_reviews
from training.metrics import classification_report, majority_baseline
from training.model_io import load_predictor

log = logging.getLogger("training.evaluate")


@dataclass
class EvaluateConfig:
    """Evaluate a sentiment model (directory or model.tar.gz) on labelled reviews."""

    model: str = field(
        default_factory=lambda: env("SM_CHANNEL_MODEL", ".artifacts/model"),
        metadata={"help": "model directory or model.tar.gz"},
    )
    data: str = field(
        default_factory=lambda: env("SM_CHANNEL_TEST", ".artifacts/features/test"),
        metadata={"help": "labelled reviews: split dir, Parquet lake or raw Kaggle CSV / CSV.gz"},
    )
    output: str = field(
        default_factory=lambda: env("REVIEWSENSE_EVALUATION_OUTPUT", ".artifacts/evaluation/evaluation.json"),
        metadata={"help": "where evaluation.json is written"},
    )
    predictions: str = field(
        default="", metadata={"help": "optional Parquet path for per-example predictions with facets"}
    )
    json: bool = field(default=False, metadata={"help": "print the evaluation object on stdout"})
    batch_size: int = field(default=64, metadata={"help": "scoring batch size"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available) | cpu | cuda"})
    max_rows: int = field(default=0, metadata={"help": "evaluate a seeded sample of this many rows; 0 = all"})
    seed: int = field(default=42, metadata={"help": "seed of the --max-rows sample"})


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    frame = load_reviews(cfg.data)
    if cfg.max_rows > 0 and len(frame) > cfg.max_rows:
        frame = frame.sample(n=cfg.max_rows, random_state=cfg.seed).reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"no labelled reviews with text in {cfg.data}")
    predictor = load_predictor(cfg.model, cfg.device, cfg.batch_size)
    t0 = time.perf_counter()
    raw = predictor.predict_proba(items(frame), adjusted=False)
    seconds = time.perf_counter() - t0
    from training.inference import softmax

    adjusted = softmax(np.log(np.clip(raw, 1e-12, 1.0)) + predictor.logit_bias)
    y = frame["label"].to_numpy()
    report = classification_report(y, adjusted.argmax(axis=1), predictor.labels or LABELS)
    result: dict[str, Any] = {
        "model": str(cfg.model),
        "data": str(cfg.data),
        **report,
        "majority_baseline": majority_baseline(y),
        "without_decision_tuning": {
            k: v
            for k, v in classification_report(y, raw.argmax(axis=1)).items()
            if k in ("accuracy", "macro_f1", "balanced_accuracy")
        },
        "decision": predictor.decision,
        "seconds": round(seconds, 2),
        "reviews_per_second": round(len(frame) / max(seconds, 1e-9), 1),
    }
    if cfg.predictions:
        from training.outputs import prediction_frame

        out = Path(cfg.predictions)
        out.parent.mkdir(parents=True, exist_ok=True)
        prediction_frame(frame, raw, adjusted, "evaluate").to_parquet(out, index=False)
        result["predictions"] = str(out)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(EvaluateConfig, argv)
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON object
        result = evaluate(cfg)
        out = Path(cfg.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        log.info(
            "evaluation written to %s: accuracy: %.4f macro_f1: %.4f balanced_accuracy: %.4f (n=%d)",
            out,
            result["accuracy"],
            result["macro_f1"],
            result["balanced_accuracy"],
            result["n"],
        )
    if cfg.json:
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
