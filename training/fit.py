"""The fine-tuning loop, with its stopping rules as small objects.

``Trainer.fit`` trains with length-bucketed dynamic padding, warm-up + linear decay, gradient clipping and the
class-weighted loss of ``training.loss``; it evaluates every epoch or N steps and stops at the first of:
the step budget, the time budget, early stopping on validation macro-F1 (``EarlyStopping``), or a
training-health rule (``HealthMonitor``, the rules the watchdog Lambda also applies). It restores the best
evaluation's weights and returns what the rest of the run (``training.finetune``) needs.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chalicelib.domain.training_health import (
    OVERFITTING,
    HealthConfig,
    MetricPoint,
    RuleViolation,
    check_training_health,
)
from training.distill import distillation_loss, soft_batch
from training.encoding import Encoded, collate, make_batches, predict_proba
from training.loss import class_weights, loss_fn
from training.metrics import classification_report
from training.outputs import format_metrics
from training.train_config import TrainConfig

log = logging.getLogger("training.train")  # the run's log lines keep the entry point's logger name


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


class EarlyStopping:
    """Stop after ``patience`` evaluations without a validation macro-F1 gain (patience 0: never)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_score = -1.0
        self.evals_without_gain = 0

    def improved(self, score: float) -> bool:
        """Record an evaluation's score; True when it is the best so far."""
        if score > self.best_score + 1e-6:
            self.best_score = score
            self.evals_without_gain = 0
            return True
        self.evals_without_gain += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.evals_without_gain >= self.patience


@dataclass
class HealthMonitor:
    """The metric history of the run, checked against the training-health rules after each point."""

    config: HealthConfig
    enabled: bool = True
    history: list[MetricPoint] = field(default_factory=list)
    violations: list[RuleViolation] = field(default_factory=list)

    def check(self, scope: str) -> str | None:
        """The stop reason when a rule fires (``step`` scope: all rules but overfitting), else None."""
        if not self.enabled:
            return None
        found = check_training_health(self.history, self.config)
        if scope == "step":
            found = [v for v in found if v.rule != OVERFITTING]
        if not found:
            return None
        self.violations.extend(found)
        for v in found:
            log.error("training health rule %s fired: %s", v.rule, v.reason)
        return f"health_rule:{found[0].rule}"


@dataclass
class FitResult:
    """How training ended, and the best evaluation (its weights are back in the model)."""

    stop_reason: str
    steps: int
    steps_per_epoch: int
    best_step: int
    best_macro_f1: float
    val_probs: np.ndarray
    train_seconds: float
    samples_per_second: float
    precision: str
    health: HealthMonitor


class Trainer:
    """One training run: optimiser, counters, loss windows, best evaluation so far; ``fit`` is the loop."""

    def __init__(
        self,
        model: Any,
        train_enc: Encoded,
        val_enc: Encoded,
        cfg: TrainConfig,
        *,
        pad_id: int,
        head_map: Sequence[int] | None,
        device: str,
        soft_labels: np.ndarray | None = None,
    ) -> None:
        import torch
        from transformers import get_linear_schedule_with_warmup

        self.model, self.train_enc, self.val_enc, self.cfg = model, train_enc, val_enc, cfg
        self.pad_id, self.head_map, self.device = pad_id, head_map, device
        self.soft_labels = soft_labels  # the teacher's probabilities at the distillation temperature
        self.steps_per_epoch, self.total_steps = plan_steps(
            len(train_enc.labels), cfg.batch_size, cfg.epochs, cfg.max_steps
        )
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
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
        self.scheduler = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]
            self.optimizer, int(cfg.warmup_ratio * self.total_steps), self.total_steps
        )
        self.weights_np = class_weights(train_enc.targets, cfg.class_weighting, model.config.num_labels)
        self.weights = torch.tensor(self.weights_np, dtype=torch.float32, device=device)
        self.eval_every = cfg.eval_steps if cfg.eval_steps > 0 else self.steps_per_epoch
        self.precision = resolve_precision(cfg.precision, device)
        self.stopping = EarlyStopping(cfg.early_stopping_patience)
        self.health = HealthMonitor(cfg.health_config(), enabled=cfg.health_checks)
        self.best: dict[str, Any] = {"step": 0, "state": None, "probs": None}
        self.step = 0
        self.samples_seen = 0
        self.train_seconds = 0.0
        self.interval_loss: list[float] = []
        self.eval_loss: list[float] = []

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch

    def train_step(self, batch_idx: np.ndarray) -> tuple[float, float]:
        """One optimiser step on a batch; returns (loss, gradient norm)."""
        import torch

        cfg = self.cfg
        t0 = time.perf_counter()
        width = cfg.max_seq_length if cfg.padding == "fixed" else None
        inputs, labels = collate(self.train_enc, batch_idx, self.pad_id, width)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        labels = labels.to(self.device)
        autocast = self.precision == "bf16"
        with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
            logits = self.model(**inputs).logits
        loss = loss_fn(logits.float(), labels, self.weights, cfg.focal_gamma, cfg.label_smoothing)
        if (soft := soft_batch(self.soft_labels, batch_idx)) is not None:
            probs, has_soft = (t.to(self.device) for t in soft)
            loss = distillation_loss(
                logits,
                labels,
                probs,
                has_soft,
                hard_loss=loss,
                alpha=cfg.distill_alpha,
                temperature=cfg.distill_temperature,
            )
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.train_seconds += time.perf_counter() - t0
        self.step += 1
        self.samples_seen += len(batch_idx)
        loss_value = float(loss.detach())
        self.interval_loss.append(loss_value)
        self.eval_loss.append(loss_value)
        return loss_value, grad_norm

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / max(self.train_seconds, 1e-9)

    def log_train(self, loss_value: float, grad_norm: float, unhealthy: bool) -> None:
        tl = loss_value if unhealthy else float(np.mean(self.interval_loss))
        self.interval_loss.clear()
        self.health.history.append(
            MetricPoint(step=self.step, epoch=self.epoch, train_loss=tl, grad_norm=grad_norm)
        )
        values = {
            "step": self.step,
            "epoch": round(self.epoch, 3),
            "train_loss": tl,
            "grad_norm": grad_norm,
            "lr": self.scheduler.get_last_lr()[0],
            "samples_per_second": self.samples_per_second,
        }
        log.info("train %s", format_metrics(values))

    def evaluate(self) -> None:
        """Score validation, log it, and keep the weights when macro-F1 improved."""
        probs, vloss = predict_proba(
            self.model, self.val_enc, self.cfg.eval_batch_size, self.pad_id, self.head_map
        )
        rep = classification_report(self.val_enc.labels, probs.argmax(axis=1))
        tl = float(np.mean(self.eval_loss)) if self.eval_loss else None
        self.eval_loss.clear()
        self.health.history.append(
            MetricPoint(
                step=self.step, epoch=self.epoch, train_loss=tl, val_loss=vloss, val_macro_f1=rep["macro_f1"]
            )
        )
        values = {
            "step": self.step,
            "epoch": round(self.epoch, 3),
            "train_loss": tl or float("nan"),
            "val_loss": vloss,
            "val_acc": rep["accuracy"],
            "val_macro_f1": rep["macro_f1"],
        }
        log.info("eval %s", format_metrics(values))
        if self.stopping.improved(rep["macro_f1"]):
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best.update(step=self.step, probs=probs, state=state)

    def stop_reason(self, loss_value: float, grad_norm: float, started: float) -> str | None:
        """After a step: log / evaluate when due, and say why training stops now (None: go on)."""
        cfg = self.cfg
        unhealthy = not (math.isfinite(loss_value) and math.isfinite(grad_norm))
        if self.step % cfg.logging_steps == 0 or unhealthy:
            self.log_train(loss_value, grad_norm, unhealthy)
            if reason := self.health.check("step"):
                return reason
        if self.step % self.eval_every == 0 or self.step >= self.total_steps:
            self.evaluate()
            if reason := self.health.check("eval"):
                return reason
            if self.stopping.should_stop:
                return "early_stopping"
        if self.step >= self.total_steps:
            return "max_steps" if cfg.max_steps > 0 and self.step == cfg.max_steps else "completed"
        if cfg.max_train_minutes > 0 and (time.perf_counter() - started) > cfg.max_train_minutes * 60:
            self.evaluate()  # the last evaluation may also exhaust the early-stopping patience
            return "early_stopping" if self.stopping.should_stop else "time_budget"
        return None

    def fit(self, *, started: float, model_name: str) -> FitResult:
        """Train until a stop rule says so, then restore the best evaluation's weights.

        ``started`` is when the run began (``--max-train-minutes`` counts from there).
        """
        cfg = self.cfg
        log.info(
            "model: %s steps: %d (%d per epoch) batch: %d padding: %s device: %s precision: %s "
            "class_weights: %s",
            model_name,
            self.total_steps,
            self.steps_per_epoch,
            cfg.batch_size,
            cfg.padding,
            self.device,
            self.precision,
            np.round(self.weights_np, 3).tolist(),
        )
        rng = np.random.default_rng(cfg.seed)
        bar = _progress(cfg.progress_bar, self.total_steps)
        stop: str | None = None
        while stop is None:  # one pass of make_batches per epoch
            lengths = self.train_enc.lengths
            for batch_idx in make_batches(lengths, cfg.batch_size, rng, cfg.padding, cfg.bucket_multiplier):
                loss_value, grad_norm = self.train_step(batch_idx)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.4f}")
                stop = self.stop_reason(loss_value, grad_norm, started)
                if stop is not None:
                    break
        if bar is not None:
            bar.close()
        if (
            self.best["state"] is None
        ):  # stopped before any evaluation (e.g. a health rule at the first steps)
            self.evaluate()
        if self.best["state"] is not None:
            self.model.load_state_dict(self.best["state"])
        log.info(
            "training stopped: %s after %d steps (%.1f s); best step %d val_macro_f1 %.4f",
            stop,
            self.step,
            self.train_seconds,
            self.best["step"],
            self.stopping.best_score,
        )
        return FitResult(
            stop_reason=stop,
            steps=self.step,
            steps_per_epoch=self.steps_per_epoch,
            best_step=self.best["step"],
            best_macro_f1=self.stopping.best_score,
            val_probs=self.best["probs"],
            train_seconds=self.train_seconds,
            samples_per_second=self.samples_per_second,
            precision=self.precision,
            health=self.health,
        )


def _progress(enabled: str, total: int) -> Any:
    show = sys.stderr.isatty() if enabled == "auto" else enabled.lower() in {"true", "1", "yes"}
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step", dynamic_ncols=True)
