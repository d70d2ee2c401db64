"""Metrics and the validation-tuned decision rule."""

from __future__ import annotations

import numpy as np

from training.metrics import (
    apply_bias,
    classification_report,
    macro_f1,
    majority_baseline,
    tune_ensemble,
    tune_logit_bias,
)


def test_classification_report_values() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2, 2, 0])
    rep = classification_report(y_true, y_pred)
    assert rep["accuracy"] == 6 / 8
    assert rep["per_class"]["negative"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert rep["per_class"]["neutral"]["precision"] == 2 / 3
    assert rep["confusion_matrix"]["rows_true_cols_pred"] == [[1, 1, 0], [0, 2, 0], [1, 0, 3]]
    assert abs(rep["balanced_accuracy"] - (0.5 + 1.0 + 0.75) / 3) < 1e-12
    assert abs(rep["macro_f1"] - macro_f1(y_true, y_pred)) < 1e-12


def test_majority_baseline_matches_the_published_reference() -> None:
    y = np.array([2] * 77 + [1] * 12 + [0] * 11)
    base = majority_baseline(y)
    assert base["predict"] == "positive"
    assert base["accuracy"] == 0.77
    assert abs(base["macro_f1"] - 0.29) < 0.005


def test_tuned_bias_raises_macro_f1_for_a_prior_shifted_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=3000, p=[0.1, 0.13, 0.77])
    logits = rng.normal(size=(3000, 3))
    logits[np.arange(3000), y] += 1.5
    logits[:, 2] += 2.5  # a model that over-predicts the majority class
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    before = macro_f1(y, probs.argmax(axis=1))
    bias, after = tune_logit_bias(probs, y)
    assert after > before + 0.02
    assert abs(macro_f1(y, apply_bias(probs, bias)) - after) < 1e-12
    assert bias[2] == 0.0 and bias[0] > 0 and bias[1] > 0


def test_tune_ensemble_prefers_the_better_model() -> None:
    y = np.array([0, 1, 2] * 20)
    good = np.eye(3)[y] * 0.8 + 0.2 / 3
    noise = np.full((60, 3), 1 / 3)
    w, _, score = tune_ensemble(good, noise, y)
    assert score == 1.0 and w > 0
