"""Every training-health rule fires on a synthetic unhealthy history and stays quiet on a healthy one."""

from __future__ import annotations

import math

import pytest

from chalicelib.domain.training_health import (
    ALL_RULES,
    EXPLODING_GRADIENT,
    LOSS_NOT_DECREASING,
    NAN_LOSS,
    OVERFITTING,
    VANISHING_GRADIENT,
    HealthConfig,
    HistoryBuilder,
    MetricPoint,
    check_training_health,
    parse_metric_line,
)

CFG = HealthConfig(loss_window=3, vanishing_window=3, overfit_patience=2, exploding_grad_norm=100.0)


def healthy_history() -> list[MetricPoint]:
    """Loss falls, gradients stay moderate, validation loss falls then flattens."""
    points = [
        MetricPoint(step=10 * i, train_loss=1.0 / (1 + i), grad_norm=2.0 + 0.1 * i) for i in range(1, 13)
    ]
    points += [
        MetricPoint(step=40, train_loss=0.3, val_loss=0.60, val_macro_f1=0.5),
        MetricPoint(step=80, train_loss=0.2, val_loss=0.55, val_macro_f1=0.6),
        MetricPoint(step=120, train_loss=0.1, val_loss=0.56, val_macro_f1=0.62),
    ]
    return sorted(points, key=lambda p: (p.step, p.val_loss is not None))


def rules_fired(history: list[MetricPoint], config: HealthConfig = CFG) -> set[str]:
    return {v.rule for v in check_training_health(history, config)}


def test_healthy_history_fires_nothing() -> None:
    assert check_training_health(healthy_history(), CFG) == []
    assert check_training_health([], CFG) == []


@pytest.mark.parametrize("field", ["train_loss", "val_loss"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_nan_loss_fires(field: str, value: float) -> None:
    history = [*healthy_history(), MetricPoint(step=130, **{field: value})]
    violations = check_training_health(history, CFG)
    assert [v.rule for v in violations if v.rule == NAN_LOSS] == [NAN_LOSS]
    nan = next(v for v in violations if v.rule == NAN_LOSS)
    assert field in nan.reason and nan.step == 130


def test_exploding_gradient_fires_on_large_or_non_finite_norm() -> None:
    assert EXPLODING_GRADIENT in rules_fired(
        [*healthy_history(), MetricPoint(step=130, train_loss=0.1, grad_norm=5e3)]
    )
    assert EXPLODING_GRADIENT in rules_fired(
        [*healthy_history(), MetricPoint(step=130, train_loss=0.1, grad_norm=math.inf)]
    )
    # a spike that has passed does not keep firing
    assert EXPLODING_GRADIENT not in rules_fired(
        [
            MetricPoint(step=1, train_loss=1.0, grad_norm=5e3),
            MetricPoint(step=2, train_loss=0.9, grad_norm=3.0),
        ]
    )


def test_vanishing_gradient_fires_after_window_of_tiny_norms() -> None:
    tiny = [MetricPoint(step=200 + i, train_loss=0.5, grad_norm=1e-9) for i in range(3)]
    violation = next(
        v for v in check_training_health([*healthy_history(), *tiny], CFG) if v.rule == VANISHING_GRADIENT
    )
    assert "no longer learns" in violation.reason
    # two tiny norms are not enough for a window of three
    assert VANISHING_GRADIENT not in rules_fired([*healthy_history(), *tiny[:2]])


def test_loss_not_decreasing_fires_on_plateau_or_rise() -> None:
    flat = [MetricPoint(step=i, train_loss=0.7, grad_norm=1.0) for i in range(6)]
    assert LOSS_NOT_DECREASING in rules_fired(flat)
    rising = [MetricPoint(step=i, train_loss=0.5 + 0.1 * i, grad_norm=1.0) for i in range(6)]
    assert LOSS_NOT_DECREASING in rules_fired(rising)
    assert LOSS_NOT_DECREASING not in rules_fired(rising[:5])  # fewer than two windows
    falling = [MetricPoint(step=i, train_loss=1.0 - 0.1 * i, grad_norm=1.0) for i in range(6)]
    assert LOSS_NOT_DECREASING not in rules_fired(falling)
    # a required relative decrease makes a slow decline fire
    slow = [MetricPoint(step=i, train_loss=1.0 - 0.001 * i, grad_norm=1.0) for i in range(6)]
    strict = HealthConfig(loss_window=3, loss_min_relative_decrease=0.05)
    assert LOSS_NOT_DECREASING in rules_fired(slow, strict)


def test_overfitting_fires_when_val_loss_rises_while_train_loss_falls() -> None:
    evals = [
        MetricPoint(step=100, train_loss=0.50, val_loss=0.40),
        MetricPoint(step=200, train_loss=0.30, val_loss=0.45),
        MetricPoint(step=300, train_loss=0.20, val_loss=0.52),
    ]
    violation = next(v for v in check_training_health(evals, CFG) if v.rule == OVERFITTING)
    assert violation.step == 300 and "validation loss rose for 2" in violation.reason
    # val loss rising but train loss rising too: not overfitting (that is divergence)
    diverging = [MetricPoint(step=p.step, train_loss=1 + p.step / 100, val_loss=p.val_loss) for p in evals]
    assert OVERFITTING not in rules_fired(diverging)
    # one rise is below the patience of two
    assert OVERFITTING not in rules_fired(evals[1:])
    # a dip breaks the streak
    dip = [*evals[:2], MetricPoint(step=300, train_loss=0.2, val_loss=0.41)]
    assert OVERFITTING not in rules_fired(dip)


def test_enabled_rules_and_unknown_rule() -> None:
    flat = [MetricPoint(step=i, train_loss=math.nan if i == 5 else 0.7) for i in range(6)]
    only_nan = HealthConfig(enabled_rules=(NAN_LOSS,), loss_window=3)
    assert rules_fired(flat, only_nan) == {NAN_LOSS}
    with pytest.raises(ValueError, match="unknown training-health rule"):
        check_training_health(flat, HealthConfig(enabled_rules=("nope",)))
    assert set(ALL_RULES) == {
        NAN_LOSS,
        EXPLODING_GRADIENT,
        VANISHING_GRADIENT,
        LOSS_NOT_DECREASING,
        OVERFITTING,
    }


def test_log_lines_fold_into_a_history_the_watchdog_can_check() -> None:
    line = "training.train train step: 20 epoch: 0.04 train_loss: 1.07 grad_norm: 1.2 lr: 1.7e-05"
    assert parse_metric_line(line) == {
        "step": 20.0,
        "epoch": 0.04,
        "train_loss": 1.07,
        "grad_norm": 1.2,
        "lr": 1.7e-05,
    }
    assert math.isnan(parse_metric_line("step: 3 train_loss: nan")["train_loss"])
    builder = HistoryBuilder()
    points = builder.add_lines(
        [
            line,
            "eval step: 40 epoch: 0.08 train_loss: 0.9 val_loss: 0.8 val_acc: 0.8 val_macro_f1: 0.5",
            "rows train: 100",  # not a metric line
            "train step: 60 train_loss: nan grad_norm: 1.0",
        ]
    )
    assert [p.step for p in points] == [20, 40, 60]
    assert points[1].val_loss == 0.8 and points[1].val_macro_f1 == 0.5
    assert {v.rule for v in check_training_health(points)} == {NAN_LOSS}


def test_metric_point_round_trip() -> None:
    point = MetricPoint(step=5, epoch=0.5, train_loss=0.4, grad_norm=1.5, val_loss=0.3, val_macro_f1=0.7)
    assert MetricPoint.from_dict(point.to_dict()) == point
