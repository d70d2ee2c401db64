"""Training-health rules over a metrics history (what SageMaker Debugger's built-in rules did).

SageMaker Debugger is closed to new customers, so the rules that stop an unhealthy training job are ours.
They are plain functions over a list of :class:`MetricPoint` so that the same code runs in two places:
inside the training job (``training/fit.py``) after every logging step / evaluation, and in the watchdog
Lambda that reads the metric lines of a running SageMaker job (see :func:`parse_metric_line`) and calls
StopTrainingJob.

Pure and stdlib only: this file is shipped in the SageMaker source directory next to ``training/`` and
must import nothing else from ``chalicelib``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

NAN_LOSS = "nan_loss"
EXPLODING_GRADIENT = "exploding_gradient"
VANISHING_GRADIENT = "vanishing_gradient"
LOSS_NOT_DECREASING = "loss_not_decreasing"
OVERFITTING = "overfitting"

#: SageMaker metric definitions for the lines train.py prints (the pipeline passes them to CreateTrainingJob).
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train_loss", "Regex": r"train_loss: ([-+0-9.eE]+|nan|inf)"},
    {"Name": "grad_norm", "Regex": r"grad_norm: ([-+0-9.eE]+|nan|inf)"},
    {"Name": "val_loss", "Regex": r"val_loss: ([-+0-9.eE]+|nan|inf)"},
    {"Name": "val_acc", "Regex": r"val_acc: ([0-9.]+)"},
    {"Name": "val_macro_f1", "Regex": r"val_macro_f1: ([0-9.]+)"},
    {"Name": "test_acc", "Regex": r"test_acc: ([0-9.]+)"},
    {"Name": "test_macro_f1", "Regex": r"test_macro_f1: ([0-9.]+)"},
    {"Name": "samples_per_second", "Regex": r"samples_per_second: ([0-9.]+)"},
]

ALL_RULES: tuple[str, ...] = (
    NAN_LOSS,
    EXPLODING_GRADIENT,
    VANISHING_GRADIENT,
    LOSS_NOT_DECREASING,
    OVERFITTING,
)


@dataclass(frozen=True)
class MetricPoint:
    """One observation of a training job: a logging step (train loss, gradient norm) and/or an evaluation."""

    step: int
    epoch: float = 0.0
    train_loss: float | None = None
    grad_norm: float | None = None
    val_loss: float | None = None
    val_macro_f1: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "grad_norm": self.grad_norm,
            "val_loss": self.val_loss,
            "val_macro_f1": self.val_macro_f1,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MetricPoint:
        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)  # type: ignore[arg-type]

        return cls(
            step=int(data.get("step", 0)),  # type: ignore[call-overload]
            epoch=float(data.get("epoch", 0.0)),  # type: ignore[arg-type]
            train_loss=opt("train_loss"),
            grad_norm=opt("grad_norm"),
            val_loss=opt("val_loss"),
            val_macro_f1=opt("val_macro_f1"),
        )


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the rules; the defaults suit fine-tuning a BERT-family encoder."""

    enabled_rules: tuple[str, ...] = ALL_RULES
    # exploding_gradient: a gradient norm (before clipping) above this, or not finite.
    exploding_grad_norm: float = 1.0e4
    # vanishing_gradient: this many consecutive logged gradient norms below the threshold.
    vanishing_grad_norm: float = 1.0e-7
    vanishing_window: int = 5
    # loss_not_decreasing: mean train loss over the last `loss_window` logged points is not lower (by at
    # least `loss_min_relative_decrease`) than the mean over the `loss_window` points before them.
    loss_window: int = 25
    loss_min_relative_decrease: float = 0.0
    loss_min_step: int = 0
    # overfitting: validation loss rose at `overfit_patience` consecutive evaluations while train loss fell.
    overfit_patience: int = 3


@dataclass(frozen=True)
class RuleViolation:
    """A rule that fired: its name, a sentence a person can act on, and the step it fired at."""

    rule: str
    reason: str
    step: int

    def to_dict(self) -> dict[str, str | int]:
        return {"rule": self.rule, "reason": self.reason, "step": self.step}


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def nan_loss(history: Sequence[MetricPoint], config: HealthConfig) -> RuleViolation | None:
    """Fires when the latest train or validation loss is NaN or infinite."""
    if not history:
        return None
    last = history[-1]
    for name, value in (("train_loss", last.train_loss), ("val_loss", last.val_loss)):
        if value is not None and not math.isfinite(value):
            return RuleViolation(NAN_LOSS, f"{name} is {value} at step {last.step}", last.step)
    return None


def exploding_gradient(history: Sequence[MetricPoint], config: HealthConfig) -> RuleViolation | None:
    """Fires when the latest gradient norm is not finite or above ``exploding_grad_norm``."""
    points = [p for p in history if p.grad_norm is not None]
    if not points:
        return None
    last = points[-1]
    norm = last.grad_norm
    assert norm is not None
    if not math.isfinite(norm) or norm > config.exploding_grad_norm:
        return RuleViolation(
            EXPLODING_GRADIENT,
            f"gradient norm {norm:.4g} at step {last.step} exceeds {config.exploding_grad_norm:.4g}"
            " (lower the learning rate or the clipping norm)",
            last.step,
        )
    return None


def vanishing_gradient(history: Sequence[MetricPoint], config: HealthConfig) -> RuleViolation | None:
    """Fires when the last ``vanishing_window`` gradient norms are all below ``vanishing_grad_norm``."""
    norms = [p for p in history if _finite(p.grad_norm)]
    window = max(1, config.vanishing_window)
    if len(norms) < window:
        return None
    recent = norms[-window:]
    if all((p.grad_norm or 0.0) < config.vanishing_grad_norm for p in recent):
        return RuleViolation(
            VANISHING_GRADIENT,
            f"gradient norm below {config.vanishing_grad_norm:.1e} for {window} consecutive logged steps"
            f" (steps {recent[0].step}-{recent[-1].step}): the model no longer learns",
            recent[-1].step,
        )
    return None


def loss_not_decreasing(history: Sequence[MetricPoint], config: HealthConfig) -> RuleViolation | None:
    """Fires when the mean train loss of the last window is not below the mean of the window before."""
    points = [p for p in history if _finite(p.train_loss) and p.step >= config.loss_min_step]
    window = max(1, config.loss_window)
    if len(points) < 2 * window:
        return None
    recent = _mean([p.train_loss or 0.0 for p in points[-window:]])
    previous = _mean([p.train_loss or 0.0 for p in points[-2 * window : -window]])
    if recent >= previous * (1.0 - config.loss_min_relative_decrease):
        return RuleViolation(
            LOSS_NOT_DECREASING,
            f"mean train loss {recent:.4f} over the last {window} logged steps is not below {previous:.4f}"
            f" of the {window} before (up to step {points[-1].step})",
            points[-1].step,
        )
    return None


def overfitting(history: Sequence[MetricPoint], config: HealthConfig) -> RuleViolation | None:
    """Fires when val loss rose at ``overfit_patience`` consecutive evaluations while train loss fell."""
    evals = [p for p in history if _finite(p.val_loss)]
    patience = max(1, config.overfit_patience)
    if len(evals) < patience + 1:
        return None
    span = evals[-(patience + 1) :]
    val = [p.val_loss or 0.0 for p in span]
    rising = all(b > a for a, b in pairwise(val))
    train = [p.train_loss for p in span]
    if any(not _finite(t) for t in (train[0], train[-1])):
        return None
    falling = (train[-1] or 0.0) < (train[0] or 0.0)
    if rising and falling:
        return RuleViolation(
            OVERFITTING,
            f"validation loss rose for {patience} evaluations in a row ({val[0]:.4f} -> {val[-1]:.4f}) while"
            f" train loss fell ({train[0]:.4f} -> {train[-1]:.4f}) at step {span[-1].step}",
            span[-1].step,
        )
    return None


Rule = Callable[[Sequence[MetricPoint], HealthConfig], RuleViolation | None]

RULES: dict[str, Rule] = {
    NAN_LOSS: nan_loss,
    EXPLODING_GRADIENT: exploding_gradient,
    VANISHING_GRADIENT: vanishing_gradient,
    LOSS_NOT_DECREASING: loss_not_decreasing,
    OVERFITTING: overfitting,
}


def check_training_health(
    history: Sequence[MetricPoint], config: HealthConfig | None = None
) -> list[RuleViolation]:
    """Apply every enabled rule to the history; an empty list means the job is healthy."""
    cfg = config or HealthConfig()
    violations: list[RuleViolation] = []
    for name in cfg.enabled_rules:
        rule = RULES.get(name)
        if rule is None:
            raise ValueError(f"unknown training-health rule {name!r}; known: {', '.join(ALL_RULES)}")
        violation = rule(history, cfg)
        if violation is not None:
            violations.append(violation)
    return violations


_METRIC_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):\s*(-?(?:nan|inf|[0-9.]+(?:[eE][-+]?[0-9]+)?))", re.I)


def parse_metric_line(line: str) -> dict[str, float]:
    """Parse ``key: value`` pairs from a training log line (the format train.py prints and SageMaker
    metric-definition regexes read), e.g. ``step: 20 train_loss: 0.52 grad_norm: 3.1``."""
    return {key: float(value) for key, value in _METRIC_RE.findall(line)}


@dataclass
class HistoryBuilder:
    """Folds parsed log lines into a metrics history (for the watchdog reading CloudWatch log events)."""

    points: list[MetricPoint] = field(default_factory=list)

    def add_line(self, line: str) -> MetricPoint | None:
        values = parse_metric_line(line)
        if "step" not in values or not ({"train_loss", "val_loss", "grad_norm"} & values.keys()):
            return None
        point = MetricPoint.from_dict(values)
        self.points.append(point)
        return point

    def add_lines(self, lines: Iterable[str]) -> list[MetricPoint]:
        for line in lines:
            self.add_line(line)
        return self.points
