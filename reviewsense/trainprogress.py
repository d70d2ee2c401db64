"""A training job's progress, read from the lines it logs: step / total, loss, rate, ETA, validation F1.

A training run takes minutes, and whoever waits on it (``make demo``, ``reviewsense pipeline start --wait``)
should see it move. The job already says everything needed in CloudWatch Logs, the one place its output
goes on AWS and on the local cloud: ``training/fit.py`` logs a header with the run's total steps and batch
size, a ``train step: ...`` line every ``logging_steps``, an ``eval step: ...`` line per evaluation and a
``training stopped: ...`` line. This module turns those lines into progress updates and decides which of
them to print, so the terminal gets one line every ``every_s`` seconds and not a flood.

Pure: no I/O, no clock. The caller passes each log event's text and timestamp (the job's clock, as
CloudWatch stamps it) and its own "now" for throttling, so the ETA never mixes two machines' clocks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.domain.training_health import parse_metric_line

#: The header ``Trainer.fit`` logs first: ``model: X steps: 250 (92 per epoch) batch: 32 ...``.
_HEADER = re.compile(r"\bsteps: (\d+) \((\d+) per epoch\) batch: (\d+)")
_TRAIN = re.compile(r"\btrain step: \d")
_EVAL = re.compile(r"\beval step: \d")
_STOPPED = re.compile(
    r"\btraining stopped: (\S+) after (\d+) steps \(([0-9.]+) s\); "
    r"best step (\d+) val_macro_f1 ([-+0-9.eEnaif]+)"
)
#: The hyperparameter names of the wall-clock budget (``--max-train-minutes``), as script mode passes them.
BUDGET_HYPERPARAMETERS = ("max-train-minutes", "max_train_minutes")


@dataclass(frozen=True)
class TrainProgress:
    """Where training stands after a ``train step`` line."""

    step: int
    total_steps: int | None
    epoch: float | None
    loss: float | None
    samples_per_second: float | None
    eta_s: float | None
    eta_by_budget: bool = False  # the time budget ends training before the last step would


@dataclass(frozen=True)
class EvalProgress:
    """One evaluation on the validation split."""

    step: int
    total_steps: int | None
    macro_f1: float
    accuracy: float | None
    val_loss: float | None


@dataclass(frozen=True)
class TrainStopped:
    """The run's last training line: why it stopped and its best evaluation."""

    reason: str
    steps: int
    seconds: float
    best_step: int
    best_macro_f1: float


Update = TrainProgress | EvalProgress | TrainStopped


def budget_seconds(hyperparameters: Mapping[str, str] | None) -> float | None:
    """The training job's wall-clock budget in seconds (``max-train-minutes`` > 0), else None.

    Reads the job's ``HyperParameters`` as DescribeTrainingJob returns them (strings, possibly JSON-quoted).
    """
    for name in BUDGET_HYPERPARAMETERS:
        raw = (hyperparameters or {}).get(name)
        if raw is None:
            continue
        try:
            minutes = float(str(raw).strip().strip('"'))
        except ValueError:
            return None
        return minutes * 60 if math.isfinite(minutes) and minutes > 0 else None
    return None


class ProgressTracker:
    """Folds a training job's log lines, oldest first, into progress updates.

    ``budget_s`` is the job's wall-clock budget (``budget_seconds``): training stops when it is spent,
    counted from the job's first log line, so the ETA is the earlier of "the steps left at the measured
    rate" and "the budget left".
    """

    def __init__(self, budget_s: float | None = None) -> None:
        self.budget_s = budget_s
        self.first_ms: int | None = None
        self.total_steps: int | None = None
        self.batch_size: int | None = None
        self._rate_origin: tuple[int, int] | None = None  # (step, timestamp ms) of the run's first train line

    def feed(self, message: str, timestamp_ms: int) -> Update | None:
        """The update one log line gives, or None for any other line."""
        if self.first_ms is None:
            self.first_ms = timestamp_ms
        if header := _HEADER.search(message):  # a new run of the trainer (automl trains several)
            self.total_steps, self.batch_size = int(header.group(1)), int(header.group(3))
            self._rate_origin = None
            return None
        if _TRAIN.search(message):
            return self._train(parse_metric_line(message), timestamp_ms)
        if _EVAL.search(message):
            values = parse_metric_line(message)
            if "val_macro_f1" not in values:
                return None
            return EvalProgress(
                step=int(values["step"]),
                total_steps=self.total_steps,
                macro_f1=values["val_macro_f1"],
                accuracy=values.get("val_acc"),
                val_loss=values.get("val_loss"),
            )
        if stopped := _STOPPED.search(message):
            return TrainStopped(
                reason=stopped.group(1),
                steps=int(stopped.group(2)),
                seconds=float(stopped.group(3)),
                best_step=int(stopped.group(4)),
                best_macro_f1=float(stopped.group(5)),
            )
        return None

    def _train(self, values: dict[str, float], at_ms: int) -> TrainProgress:
        step = int(values["step"])
        rate = values.get("samples_per_second")
        if self._rate_origin is None or step <= self._rate_origin[0]:
            self._rate_origin = (step, at_ms)
        eta = eta_by_budget = None
        if self.total_steps is not None:
            eta = self._eta_by_steps(step, at_ms, rate)
            if self.budget_s is not None and self.first_ms is not None:
                left = max(0.0, self.budget_s - (at_ms - self.first_ms) / 1000)
                if eta is None or left < eta:
                    eta, eta_by_budget = left, True
        return TrainProgress(
            step=step,
            total_steps=self.total_steps,
            epoch=values.get("epoch"),
            loss=values.get("train_loss"),
            samples_per_second=rate,
            eta_s=eta,
            eta_by_budget=bool(eta_by_budget),
        )

    def _eta_by_steps(self, step: int, at_ms: int, samples_per_second: float | None) -> float | None:
        """Seconds to the last step: at the wall-clock step rate since the first train line (evaluations
        included), or, before a second line, at the logged samples/s over the batch size."""
        assert self.total_steps is not None
        left = max(0, self.total_steps - step)
        if self._rate_origin is not None and step > self._rate_origin[0] and at_ms > self._rate_origin[1]:
            steps_per_s = (step - self._rate_origin[0]) / ((at_ms - self._rate_origin[1]) / 1000)
            return left / steps_per_s
        if samples_per_second and self.batch_size:
            return left * self.batch_size / samples_per_second
        return None


def duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``1h02m``: short enough for a progress line."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _num(value: float | None, fmt: str) -> str:
    return "?" if value is None or not math.isfinite(value) else format(value, fmt)


def _steps(step: int, total: int | None) -> str:
    if not total:
        return f"step {step}"
    return f"step {step}/{total} ({min(100, 100 * step // total)}%)"


def format_update(update: Update) -> str:
    """One progress line, e.g. ``training step 120/250 (48%) | loss 0.612 | 41.2 samples/s | ETA 3m05s``."""
    if isinstance(update, TrainProgress):
        parts = [f"training {_steps(update.step, update.total_steps)}", f"loss {_num(update.loss, '.4f')}"]
        if update.samples_per_second is not None:
            parts.append(f"{_num(update.samples_per_second, '.1f')} samples/s")
        if update.eta_s is not None:
            parts.append(f"ETA {duration(update.eta_s)}" + (" (time budget)" if update.eta_by_budget else ""))
        return " | ".join(parts)
    if isinstance(update, EvalProgress):
        parts = [
            f"evaluation at {_steps(update.step, update.total_steps)}",
            f"val macro-F1 {update.macro_f1:.4f}",
        ]
        if update.accuracy is not None:
            parts.append(f"accuracy {_num(update.accuracy, '.4f')}")
        if update.val_loss is not None:
            parts.append(f"val loss {_num(update.val_loss, '.4f')}")
        return " | ".join(parts)
    return (
        f"training stopped ({update.reason}) after {update.steps} steps in {duration(update.seconds)}"
        f" | best val macro-F1 {_num(update.best_macro_f1, '.4f')} at step {update.best_step}"
    )


class ProgressPrinter:
    """Which progress lines to print: throttled train lines, every evaluation's result, the end.

    ``lines(events, now)`` takes the log events read since the last call (text, timestamp ms) and the
    caller's monotonic clock; it returns the lines to print now: the newest ``train step`` progress when
    ``every_s`` seconds have passed since the last one printed (or when training stopped, or ``final``:
    the job is over), the newest evaluation when there is a new one, and the ``training stopped`` line.
    """

    def __init__(self, tracker: ProgressTracker, every_s: float = 12.0) -> None:
        self.tracker = tracker
        self.every_s = every_s
        self._last_train_print: float | None = None
        self._pending_train: TrainProgress | None = None
        self.printed = 0

    def lines(self, events: Iterable[tuple[str, int]], now: float, final: bool = False) -> list[str]:
        evaluation: EvalProgress | None = None
        stopped: TrainStopped | None = None
        for message, timestamp_ms in events:
            update = self.tracker.feed(message, timestamp_ms)
            if isinstance(update, TrainProgress):
                self._pending_train = update
            elif isinstance(update, EvalProgress):
                evaluation = update
            elif isinstance(update, TrainStopped):
                stopped = update
        out: list[str] = []
        due = self._last_train_print is None or now - self._last_train_print >= self.every_s
        if self._pending_train is not None and (due or final or stopped is not None):
            out.append(format_update(self._pending_train))
            self._pending_train, self._last_train_print = None, now
        out.extend(format_update(u) for u in (evaluation, stopped) if u is not None)
        self.printed += len(out)
        return out
