"""One fine-tuning run: load splits -> build model -> fit -> tune decision -> save -> score test.

``training/train.py`` (the SageMaker entry point) parses its arguments and calls ``fine_tune``; the AutoML
driver (``training.automl``) calls it in-process for its transformer candidates. The steps live in their
own modules: ``training.fit`` (the loop), ``training.decision`` (the decision rule), ``training.outputs``
(what is written).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import packaged
from training.data import label_map, load_reviews
from training.decision import Decision, tune_decision
from training.distill import attach_teacher, read_teacher, resolve_teacher_path, sharpen
from training.encoding import encode, head_names, head_to_label
from training.fit import FitResult, Trainer
from training.inference import DECISION_FILE, LABEL_MAP_FILE, resolve_device
from training.metrics import classification_report, majority_baseline
from training.model_io import METRICS_FILE, install_serving_code
from training.outputs import format_metrics, prediction_frame, write_json
from training.train_config import TrainConfig

log = logging.getLogger("training.train")  # the run's log lines keep the entry point's logger name


@dataclass
class Splits:
    """The three channels after the validation hold-out and the sample caps (test may be absent)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None

    @property
    def has_test(self) -> bool:
        return self.test is not None and len(self.test) > 0


def fine_tune(cfg: TrainConfig) -> dict[str, Any]:
    """Train, tune the decision on validation, save the model directory, score test; returns the metrics."""
    started = time.perf_counter()
    _prepare_runtime(cfg)
    splits = load_splits(cfg)
    model_path = packaged.resolve(cfg.model_name_or_path)
    tokenizer, model, device = build_model(cfg, model_path)
    head_map = head_to_label(cfg.target)
    pad_id = int(tokenizer.pad_token_id or 0)
    train_enc = encode(tokenizer, splits.train, cfg.text_input, cfg.max_seq_length, cfg.target)
    val_enc = encode(tokenizer, splits.validation, cfg.text_input, cfg.max_seq_length, cfg.target)
    soft = teacher_soft_labels(cfg, splits.train)
    trainer = Trainer(
        model, train_enc, val_enc, cfg, pad_id=pad_id, head_map=head_map, device=device, soft_labels=soft
    )
    result = trainer.fit(started=started, model_name=model_path)
    decision = tune_decision(cfg, splits.train, splits.validation, result.val_probs, val_enc.labels, head_map)
    model_dir = save_model(cfg, model, tokenizer, decision)
    metrics = run_metrics(cfg, result, decision, splits, device)
    if splits.has_test:
        majority = int(np.bincount(train_enc.labels).argmax())
        metrics["test"] = score_test(cfg, model_dir, device, splits, decision.rule["logit_bias"], majority)
    metrics["total_seconds"] = round(time.perf_counter() - started, 2)
    done = {
        "samples_per_second": result.samples_per_second,
        "train_seconds": result.train_seconds,
        "total_seconds": metrics["total_seconds"],
    }
    log.info("done %s", format_metrics(done))
    write_json(model_dir / METRICS_FILE, metrics)
    write_json(Path(cfg.output_data_dir) / METRICS_FILE, metrics)
    return metrics


def _prepare_runtime(cfg: TrainConfig) -> None:
    """Seeds, CPU threads, and transformers' own logging and progress bars silenced."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)


def load_splits(cfg: TrainConfig) -> Splits:
    """The train / validation / test channels; validation is held out of train when it is missing."""
    train_df = _read_split(cfg.train, "train", required=True)
    assert train_df is not None
    val_df = _read_split(cfg.validation, "validation", required=False)
    if val_df is None or len(val_df) == 0:
        train_df, val_df = _holdout(train_df, 0.1, cfg.seed)
        log.info("validation held out from train: %d rows", len(val_df))
    test_df = _read_split(cfg.test, "test", required=False)
    splits = Splits(
        _cap(train_df, cfg.max_train_samples, cfg.seed), _cap(val_df, cfg.max_eval_samples, cfg.seed), test_df
    )
    log.info(
        "rows train: %d validation: %d test: %d",
        len(splits.train),
        len(splits.validation),
        0 if test_df is None else len(test_df),
    )
    return splits


def teacher_soft_labels(cfg: TrainConfig, train: pd.DataFrame) -> np.ndarray | None:
    """The teacher's probabilities of the training rows at the distillation temperature (None: none)."""
    path = resolve_teacher_path(cfg.teacher_probabilities)
    if path is None:
        return None
    if cfg.target != "label":
        raise ValueError("--teacher-probabilities needs --target label (the teacher scores the 3 labels)")
    if not 0.0 <= cfg.distill_alpha <= 1.0 or cfg.distill_temperature <= 0:
        raise ValueError("--distill-alpha must be in [0, 1] and --distill-temperature > 0")
    return sharpen(attach_teacher(train, read_teacher(path)), cfg.distill_temperature)


def build_model(cfg: TrainConfig, model_path: str) -> tuple[Any, Any, str]:
    """(tokenizer, model on its device in training mode, device) with a head for ``cfg.target``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    names = head_names(cfg.target)
    # fewer layers: the first N of the pre-trained encoder, the usual initialisation of a distilled student
    layers = {"num_hidden_layers": cfg.num_hidden_layers} if cfg.num_hidden_layers > 0 else {}
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path,
        **layers,
        dtype=torch.float32,  # fp32 master weights, even from a bf16 checkpoint (transformers 5 keeps it)
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        ignore_mismatched_sizes=True,
    )
    device = resolve_device(cfg.device)
    model.to(torch.device(device))
    model.train()
    return tokenizer, model, device


def save_model(cfg: TrainConfig, model: Any, tokenizer: Any, decision: Decision) -> Path:
    """The model directory, ready to become model.tar.gz (weights, ONNX, label map, decision, code)."""
    model_dir = Path(cfg.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    write_json(model_dir / LABEL_MAP_FILE, label_map())
    write_json(model_dir / DECISION_FILE, decision.rule)
    if decision.linear_model is not None and decision.is_ensemble:
        decision.linear_model.save(model_dir)
    if cfg.export_onnx:
        from training.onnx_export import export_onnx

        export_onnx(model_dir)
    install_serving_code(model_dir)
    return model_dir


def run_metrics(
    cfg: TrainConfig, result: FitResult, decision: Decision, splits: Splits, device: str
) -> dict[str, Any]:
    """The metrics of training and validation (``metrics.json``; test is added by ``score_test``)."""
    import torch

    violations = result.health.violations
    return {
        "status": "stopped_by_health_rule" if violations else "ok",
        "stop_reason": result.stop_reason,
        "health_violations": [v.to_dict() for v in violations],
        "model_name_or_path": cfg.model_name_or_path,
        "steps": result.steps,
        "epochs_completed": round(result.steps / result.steps_per_epoch, 3),
        "best_step": result.best_step,
        "train_seconds": round(result.train_seconds, 2),
        "samples_per_second": round(result.samples_per_second, 2),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "precision": result.precision,
        "rows": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": 0 if splits.test is None else len(splits.test),
        },
        "validation": {"raw": decision.val_raw, "tuned": decision.val_tuned},
        "decision": decision.rule,
        "history": [p.to_dict() for p in result.health.history],
        "config": asdict(cfg),
    }


def score_test(
    cfg: TrainConfig, model_dir: Path, device: str, splits: Splits, logit_bias: list[float], majority: int
) -> dict[str, Any]:
    """Score test once, with the saved artifact's own scoring code; write the per-example predictions."""
    from training.inference import SentimentPredictor, softmax

    test_df = splits.test
    assert test_df is not None
    predictor = SentimentPredictor(model_dir, device=device, batch_size=cfg.eval_batch_size)
    test_items = [{"title": t, "text": x} for t, x in zip(test_df["title"], test_df["text"], strict=True)]
    raw = predictor.predict_proba(test_items, adjusted=False)
    adjusted = softmax(np.log(np.clip(raw, 1e-12, 1.0)) + np.asarray(logit_bias))
    y_test = test_df["label"].to_numpy()
    tuned = classification_report(y_test, adjusted.argmax(axis=1))
    scores = {
        "test_acc": tuned["accuracy"],
        "test_macro_f1": tuned["macro_f1"],
        "test_balanced_acc": tuned["balanced_accuracy"],
    }
    log.info("test %s", format_metrics(scores))
    if cfg.save_test_predictions:
        out_dir = Path(cfg.output_data_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        prediction_frame(test_df, raw, adjusted, "test").to_parquet(
            out_dir / "test_predictions.parquet", index=False
        )
    return {
        "raw": classification_report(y_test, raw.argmax(axis=1)),
        "tuned": tuned,
        "majority_baseline": majority_baseline(y_test, majority),
    }


def _read_split(path: str, what: str, required: bool) -> pd.DataFrame | None:
    p = Path(path)
    if not p.exists():
        if required:
            raise FileNotFoundError(f"{what} data not found at {p}")
        log.info("no %s data at %s", what, p)
        return None
    return load_reviews(p)


def _cap(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n <= 0 or len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).reset_index(drop=True)


def _holdout(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    val_idx: list[int] = []
    for _, group in frame.groupby("label"):
        idx = group.index.to_numpy()
        n = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        val_idx.extend(rng.choice(idx, size=n, replace=False).tolist())
    val = frame.loc[sorted(val_idx)].reset_index(drop=True)
    return frame.drop(index=val_idx).reset_index(drop=True), val
