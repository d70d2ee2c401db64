"""A training job's log lines become progress lines: step / total, loss, samples/s, ETA, validation F1.

The lines are the ones ``training/fit.py`` logs (with the ``logging.basicConfig`` prefix that the job's
CloudWatch stream carries); the printer is fed a clock, so the throttling is checked without sleeping.
"""

from __future__ import annotations

import pytest

from reviewsense.trainprogress import (
    EvalProgress,
    ProgressPrinter,
    ProgressTracker,
    TrainProgress,
    TrainStopped,
    budget_seconds,
    duration,
    format_update,
)

T0 = 1_764_000_000_000  # ms: the job's first log line
PREFIX = "2026-11-29 15:50:01,100 INFO training.train "
HEADER = (
    PREFIX + "model: /opt/ml/input/data/encoder steps: 250 (92 per epoch) batch: 32 padding: dynamic "
    "device: cpu precision: fp32 class_weights: [2.1, 1.4, 0.5]"
)


def train(step: int, loss: float = 0.9, sps: float = 20.0) -> str:
    return (
        f"{PREFIX}train step: {step} epoch: {step / 92:.3f} train_loss: {loss} grad_norm: 3.41 "
        f"lr: 4.8e-05 samples_per_second: {sps}"
    )


def evaluation(step: int, f1: float) -> str:
    return (
        f"{PREFIX}eval step: {step} epoch: {step / 92:.3f} train_loss: 0.71 val_loss: 0.652 "
        f"val_acc: 0.81 val_macro_f1: {f1}"
    )


STOPPED = (
    PREFIX + "training stopped: time_budget after 180 steps (330.2 s); best step 160 val_macro_f1 0.6421"
)


def test_train_lines_give_step_of_total_loss_rate_and_eta() -> None:
    tracker = ProgressTracker()
    assert tracker.feed(PREFIX + "validation held out from train: 900 rows", T0) is None
    assert tracker.feed(HEADER, T0 + 10_000) is None
    first = tracker.feed(train(20, loss=1.02, sps=20.0), T0 + 40_000)
    # One line so far: the ETA is the steps left at the logged samples/s over the batch size.
    assert first == TrainProgress(
        step=20, total_steps=250, epoch=0.217, loss=1.02, samples_per_second=20.0, eta_s=230 * 32 / 20.0
    )
    # Then the wall-clock step rate between the lines (20 steps in 30 s), evaluations included.
    second = tracker.feed(train(40, loss=0.88), T0 + 70_000)
    assert isinstance(second, TrainProgress)
    assert second.eta_s == pytest.approx(210 / (20 / 30))
    assert not second.eta_by_budget


def test_the_time_budget_ends_the_eta_when_it_comes_first() -> None:
    tracker = ProgressTracker(budget_s=360.0)
    tracker.feed(HEADER, T0)
    tracker.feed(train(20), T0 + 30_000)
    update = tracker.feed(train(40), T0 + 60_000)  # 315 s of steps left, 300 s of budget left
    assert isinstance(update, TrainProgress)
    assert update.eta_s == pytest.approx(300.0) and update.eta_by_budget


def test_evaluations_and_the_end_of_training_are_read() -> None:
    tracker = ProgressTracker()
    tracker.feed(HEADER, T0)
    assert tracker.feed(evaluation(92, 0.612), T0 + 1) == EvalProgress(
        step=92, total_steps=250, macro_f1=0.612, accuracy=0.81, val_loss=0.652
    )
    assert tracker.feed(STOPPED, T0 + 2) == TrainStopped(
        reason="time_budget", steps=180, seconds=330.2, best_step=160, best_macro_f1=0.6421
    )


def test_a_new_header_starts_a_new_run_of_the_trainer() -> None:
    tracker = ProgressTracker()
    tracker.feed(HEADER, T0)
    tracker.feed(train(200), T0 + 100_000)
    tracker.feed(HEADER.replace("steps: 250 (92", "steps: 50 (50"), T0 + 200_000)
    update = tracker.feed(train(10, sps=16.0), T0 + 220_000)
    assert isinstance(update, TrainProgress)
    assert update.total_steps == 50
    assert update.eta_s == pytest.approx(40 * 32 / 16.0)


def test_without_the_header_progress_has_no_total_and_no_eta() -> None:
    update = ProgressTracker().feed(train(20), T0)
    assert isinstance(update, TrainProgress)
    assert (update.step, update.total_steps, update.eta_s) == (20, None, None)
    assert format_update(update) == "training step 20 | loss 0.9000 | 20.0 samples/s"


def test_progress_lines_read_as_a_person_expects() -> None:
    assert format_update(
        TrainProgress(step=120, total_steps=250, epoch=1.3, loss=0.61234, samples_per_second=41.25, eta_s=185)
    ) == "training step 120/250 (48%) | loss 0.6123 | 41.2 samples/s | ETA 3m05s"  # fmt: skip
    assert format_update(
        TrainProgress(step=40, total_steps=250, epoch=0.4, loss=0.9, samples_per_second=20.0, eta_s=300,
                      eta_by_budget=True)
    ).endswith("| ETA 5m00s (time budget)")  # fmt: skip
    assert (
        format_update(EvalProgress(step=92, total_steps=250, macro_f1=0.6123, accuracy=0.8, val_loss=0.65))
        == "evaluation at step 92/250 (36%) | val macro-F1 0.6123 | accuracy 0.8000 | val loss 0.6500"
    )
    assert (
        format_update(
            TrainStopped(reason="max_steps", steps=250, seconds=3725, best_step=250, best_macro_f1=0.64)
        )
        == "training stopped (max_steps) after 250 steps in 1h02m | best val macro-F1 0.6400 at step 250"
    )
    assert [duration(s) for s in (0, 44.6, 60, 3599, 7260)] == ["0s", "45s", "1m00s", "59m59s", "2h01m"]


def test_the_printer_prints_a_train_line_at_most_every_period_and_every_evaluation() -> None:
    printer = ProgressPrinter(ProgressTracker(), every_s=12.0)
    assert printer.lines([], now=0.0) == []
    first = printer.lines([(HEADER, T0), (train(20), T0 + 1), (train(40), T0 + 2)], now=1.0)
    assert [line.split(" | ")[0] for line in first] == ["training step 40/250 (16%)"]  # the newest only
    assert printer.lines([(train(60), T0 + 3)], now=6.0) == []  # 5 s after the last: held back
    assert printer.lines([(evaluation(92, 0.61), T0 + 4)], now=8.0) == [  # an evaluation is not held back
        "evaluation at step 92/250 (36%) | val macro-F1 0.6100 | accuracy 0.8100 | val loss 0.6520"
    ]
    later = printer.lines([(train(80), T0 + 5)], now=13.5)
    assert [line.split(" | ")[0] for line in later] == ["training step 80/250 (32%)"]
    printer.lines([(train(100), T0 + 6)], now=14.0)  # held back...
    end = printer.lines([(evaluation(180, 0.64), T0 + 7), (STOPPED, T0 + 8)], now=15.0)
    assert [line.split(" | ")[0] for line in end] == [  # ...until training stops
        "training step 100/250 (40%)",
        "evaluation at step 180/250 (72%)",
        "training stopped (time_budget) after 180 steps in 5m30s",
    ]
    assert printer.printed == 6


def test_a_job_that_ends_without_its_last_line_still_shows_where_it_got() -> None:
    printer = ProgressPrinter(ProgressTracker(), every_s=12.0)
    printer.lines([(HEADER, T0), (train(20), T0 + 1)], now=0.0)
    assert printer.lines([(train(40), T0 + 2)], now=1.0) == []
    final = printer.lines([], now=2.0, final=True)  # stopped by the watchdog, say: no "training stopped"
    assert [line.split(" | ")[0] for line in final] == ["training step 40/250 (16%)"]
    assert printer.lines([], now=3.0, final=True) == []


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        ({"max-train-minutes": "6", "epochs": "1"}, 360.0),
        ({"max-train-minutes": '"1.5"'}, 90.0),  # JSON-quoted, as the SageMaker SDK encodes them
        ({"max_train_minutes": "2"}, 120.0),
        ({"max-train-minutes": "0"}, None),
        ({"max-train-minutes": "soon"}, None),
        ({"epochs": "3"}, None),
        (None, None),
    ],
)
def test_the_time_budget_comes_from_the_jobs_hyperparameters(
    hyperparameters: dict[str, str] | None, expected: float | None
) -> None:
    assert budget_seconds(hyperparameters) == expected
