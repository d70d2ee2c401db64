"""Combine trained model directories into one ensemble model, with weights tuned on validation.

Averaging the probabilities of differently-trained models (two fine-tuned encoders, the TF-IDF model)
is the cheapest accuracy gain on CPU once the members exist. The member weights and the per-class logit
bias are chosen for macro-F1 on the validation split only; the test split is scored once, for the
report. The result is an ordinary model directory (members copied under ``members/``) that
``training.inference`` serves and ``training.evaluate`` evaluates like any other.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from training.config import env, parse_config, setup_logging
from training.data import items, label_map, load_reviews
from training.inference import DECISION_FILE, LABEL_MAP_FILE, SentimentPredictor, softmax
from training.metrics import apply_bias, classification_report, majority_baseline, tune_logit_bias
from training.model_io import METRICS_FILE, install_serving_code, load_predictor, resolve_model_dir

log = logging.getLogger("training.ensemble")


@dataclass
class EnsembleConfig:
    """Mix the probabilities of several model directories; weights and bias tuned on validation."""

    models: str = field(default="", metadata={"help": "comma-separated model directories or model.tar.gz"})
    validation: str = field(
        default_factory=lambda: env("SM_CHANNEL_VALIDATION", ".artifacts/features/validation"),
        metadata={"help": "validation split (weights and bias are tuned here)"},
    )
    test: str = field(
        default_factory=lambda: env("SM_CHANNEL_TEST", ".artifacts/features/test"),
        metadata={"help": "test split (reported only)"},
    )
    model_dir: str = field(
        default_factory=lambda: env("SM_MODEL_DIR", ".artifacts/ensemble"),
        metadata={"help": "output model directory"},
    )
    output_data_dir: str = field(
        default_factory=lambda: env("SM_OUTPUT_DATA_DIR", ".artifacts/ensemble-output"),
        metadata={"help": "test predictions and metrics copy"},
    )
    weight_step: float = field(default=0.1, metadata={"help": "grid step of the member weights"})
    batch_size: int = field(default=64, metadata={"help": "scoring batch size"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available) | cpu | cuda"})
    save_test_predictions: bool = field(default=True, metadata={"help": "write test_predictions.parquet"})
    export_onnx: bool = field(
        default=True,
        metadata={"help": "export each transformer member that has no ONNX model yet (and quantise it)"},
    )
    score_cache: str = field(
        default="",
        metadata={
            "help": "directory of cached member scores (one file per member and split, keyed by the "
            "member's files and the split's rows); empty = score every time"
        },
    )


def weight_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """All weight vectors on the simplex with the given step."""
    k = round(1 / step)
    return [
        tuple(c / k for c in combo) for combo in itertools.product(range(k + 1), repeat=n) if sum(combo) == k
    ]


def search_weights(
    member_probs: list[np.ndarray], y: np.ndarray, step: float
) -> tuple[tuple[float, ...], list[float], float]:
    best: tuple[tuple[float, ...], list[float], float] = ((1.0,), [0.0, 0.0, 0.0], -1.0)
    for weights in weight_grid(len(member_probs), step):
        mixed = sum(w * p for w, p in zip(weights, member_probs, strict=True))
        bias, score = tune_logit_bias(np.asarray(mixed), y, step=0.1, rounds=2)
        if score > best[2] + 1e-9:
            best = (weights, bias, score)
    return best


def _fingerprint(model_dir: Path, frame: pd.DataFrame) -> str:
    """Changes when the member's files or the split's reviews change."""
    h = hashlib.sha256()
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file() and "code" not in p.parts):
        st = f.stat()
        h.update(f"{f.relative_to(model_dir)}|{st.st_size}|{st.st_mtime_ns}".encode())
    rows = pd.util.hash_pandas_object(frame[["review_id", "title", "text"]], index=False)
    h.update(rows.to_numpy().tobytes())
    return h.hexdigest()[:24]


class LazyMember:
    """A member model directory whose weights are loaded only when a split is missing from the score cache."""

    def __init__(self, source: str, device: str, batch_size: int) -> None:
        self.model_dir = resolve_model_dir(source)
        self.device, self.batch_size = device, batch_size
        self._predictor: SentimentPredictor | None = None

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def predict_proba(self, reviews: Iterable[object], adjusted: bool = True) -> np.ndarray:
        if self._predictor is None:
            self._predictor = load_predictor(self.model_dir, self.device, self.batch_size)
        return self._predictor.predict_proba(reviews, adjusted=adjusted)


def member_scores(predictor: Any, frame: pd.DataFrame, cache: str) -> np.ndarray:
    """A member's un-adjusted probabilities on a split, read from / written to the score cache."""
    if not cache:
        return np.asarray(predictor.predict_proba(items(frame), adjusted=False))
    path = Path(cache) / f"{_fingerprint(Path(predictor.model_dir), frame)}.npy"
    if path.is_file():
        log.info("cached scores of %s: %s", predictor.model_dir, path)
        return np.asarray(np.load(path))
    probs = np.asarray(predictor.predict_proba(items(frame), adjusted=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(EnsembleConfig, argv)
    sources = [m.strip() for m in cfg.models.split(",") if m.strip()]
    if len(sources) < 2:
        raise ValueError("--models needs at least two model directories")
    t0 = time.perf_counter()
    val = load_reviews(cfg.validation)
    test = load_reviews(cfg.test) if cfg.test and Path(cfg.test).exists() else None
    predictors = [LazyMember(src, cfg.device, cfg.batch_size) for src in sources]
    val_probs = [member_scores(p, val, cfg.score_cache) for p in predictors]
    y_val = val["label"].to_numpy()
    weights, bias, score = search_weights(val_probs, y_val, cfg.weight_step)
    log.info("ensemble weights %s bias %s val_macro_f1: %.4f", weights, bias, score)

    out = Path(cfg.model_dir)
    if out.exists():
        shutil.rmtree(out)
    members = []
    for i, (pred, w) in enumerate(zip(predictors, weights, strict=True)):
        if w <= 0:
            continue
        rel = f"members/m{i}"
        shutil.copytree(pred.model_dir, out / rel, ignore=shutil.ignore_patterns("code", "__pycache__"))
        members.append({"path": rel, "weight": w, "source": sources[i]})
    from training.outputs import prediction_frame, write_json

    decision = {"model_type": "ensemble", "members": members, "logit_bias": bias}
    write_json(out / LABEL_MAP_FILE, label_map())
    write_json(out / DECISION_FILE, decision)
    if cfg.export_onnx:
        from training.onnx_export import export_model_dir

        export_model_dir(out)
    install_serving_code(out)
    mixed_val = np.asarray(sum(w * p for w, p in zip(weights, val_probs, strict=True)))
    metrics: dict[str, Any] = {
        "status": "ok",
        "model_type": "ensemble",
        "members": members,
        "validation": {
            "members": [classification_report(y_val, p.argmax(axis=1))["macro_f1"] for p in val_probs],
            "raw": classification_report(y_val, mixed_val.argmax(axis=1)),
            "tuned": classification_report(y_val, apply_bias(mixed_val, bias)),
        },
        "decision": decision,
        "config": asdict(cfg),
    }
    if test is not None and len(test):
        y_test = test["label"].to_numpy()
        test_probs = [
            member_scores(p, test, cfg.score_cache) for p, w in zip(predictors, weights, strict=True) if w > 0
        ]
        kept = [w for w in weights if w > 0]
        raw = np.asarray(sum(w * p for w, p in zip(kept, test_probs, strict=True)))
        adjusted = softmax(np.log(np.clip(raw, 1e-12, 1.0)) + np.asarray(bias))
        metrics["test"] = {
            "raw": classification_report(y_test, raw.argmax(axis=1)),
            "tuned": classification_report(y_test, adjusted.argmax(axis=1)),
            "majority_baseline": majority_baseline(y_test),
        }
        t = metrics["test"]["tuned"]
        log.info("ensemble test_acc: %.4f test_macro_f1: %.4f", t["accuracy"], t["macro_f1"])
        if cfg.save_test_predictions:
            od = Path(cfg.output_data_dir)
            od.mkdir(parents=True, exist_ok=True)
            prediction_frame(test, raw, adjusted, "test").to_parquet(
                od / "test_predictions.parquet", index=False
            )
    metrics["members_loaded"] = sum(p.loaded for p in predictors)  # the rest came from the score cache
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / METRICS_FILE, metrics)
    write_json(Path(cfg.output_data_dir) / METRICS_FILE, metrics)
    return metrics


if __name__ == "__main__":
    main()
