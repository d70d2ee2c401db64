"""The lines train.py logs are the ones ``reviewsense.trainprogress`` reads: a waiting command's progress
(step / total, ETA, validation macro-F1, the end of training) depends on them, so a change to the
training loop's log lines fails here rather than leaving ``make demo`` silent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from reviewsense.trainprogress import EvalProgress, ProgressTracker, TrainProgress, TrainStopped
from training import train


def test_a_training_run_logs_what_the_progress_lines_need(
    features_dir: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    train_args: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    metrics = train.main(
        train_args(features_dir, tiny_model_dir, tmp_path, "--ensemble-linear", "false", "--epochs", "2")
    )
    assert metrics["status"] == "ok"
    tracker = ProgressTracker(budget_s=600.0)
    updates = [tracker.feed(r.getMessage(), int(r.created * 1000)) for r in caplog.records]
    progress = [u for u in updates if isinstance(u, TrainProgress)]
    evaluations = [u for u in updates if isinstance(u, EvalProgress)]
    stopped = [u for u in updates if isinstance(u, TrainStopped)]
    assert progress and evaluations and len(stopped) == 1
    total = progress[-1].total_steps
    assert total is not None and total >= progress[-1].step > progress[0].step
    assert all(p.eta_s is not None and p.loss is not None and p.samples_per_second for p in progress)
    assert evaluations[-1].total_steps == total and 0.0 <= evaluations[-1].macro_f1 <= 1.0
    assert total >= stopped[0].steps >= progress[-1].step
