"""train.py end to end on fixture splits with a tiny BERT (seconds, no downloads)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from chalicelib.domain.training_health import METRIC_DEFINITIONS
from tests.helpers.paths import ROOT
from training import train
from training.data import FACET_COLUMNS, LABELS
from training.encoding import RATING_HEAD, make_batches, targets_of
from training.fit import resolve_precision
from training.inference import collapse_head


def test_end_to_end_writes_a_servable_model_directory(trained: dict[str, Any]) -> None:
    metrics, model_dir = trained["metrics"], trained["model_dir"]
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "label_map.json",
        "decision.json",
        "metrics.json",
        "code/inference.py",
    ):
        assert (model_dir / name).is_file(), name
    assert (model_dir / "code" / "inference.py").read_text() == (
        ROOT / "training" / "inference.py"
    ).read_text()
    assert json.loads((model_dir / "label_map.json").read_text())["labels"] == [
        "negative",
        "neutral",
        "positive",
    ]
    decision = json.loads((model_dir / "decision.json").read_text())
    assert decision["model_type"] in {"transformer", "ensemble"} and len(decision["logit_bias"]) == 3
    # The linear model is shipped exactly when the decision uses it.
    assert (model_dir / "linear_model.json").is_file() == (decision["model_type"] == "ensemble")
    assert json.loads((model_dir / "metrics.json").read_text())["steps"] == metrics["steps"]
    assert metrics["status"] == "ok" and metrics["health_violations"] == []
    samples = metrics["rows"]["train"] * metrics["epochs_completed"]
    assert metrics["samples_per_second"] == pytest.approx(samples / metrics["train_seconds"], rel=0.05)
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(metrics["test"]["tuned"])
    assert metrics["test"]["majority_baseline"]["predict"] == "positive"
    evals = [p for p in metrics["history"] if p["val_loss"] is not None]
    assert len(evals) >= 2  # one per epoch


def test_test_predictions_carry_the_product_facets(trained: dict[str, Any]) -> None:
    preds = pd.read_parquet(trained["output_dir"] / "test_predictions.parquet")
    assert set(FACET_COLUMNS) | {"review_id", "label", "pred", "pred_name", "prob_negative"} <= set(
        preds.columns
    )
    assert len(preds) == trained["metrics"]["rows"]["test"]
    probs = preds[["prob_negative", "prob_neutral", "prob_positive"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == preds["pred"].to_numpy()).all()


def test_fixed_padding_and_metric_lines_match_sagemaker_regexes(
    features_dir: Path,
    tiny_model_dir: Path,
    tmp_path: Path,
    train_args: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    metrics = train.main(
        train_args(
            features_dir,
            tiny_model_dir,
            tmp_path,
            "--padding",
            "fixed",
            "--ensemble-linear",
            "false",
            "--epochs",
            "1",
        )
    )
    assert metrics["status"] == "ok"
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], log_text)
        assert match is not None, definition["Name"]
        float(match.group(1))


def test_bucketed_batches_group_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 128, size=1000)
    bucket = make_batches(lengths, 32, np.random.default_rng(1), "bucket", 10)
    fixed = make_batches(lengths, 32, np.random.default_rng(1), "fixed", 10)
    assert sorted(np.concatenate(bucket).tolist()) == list(range(1000))  # every example once
    assert sorted(np.concatenate(fixed).tolist()) == list(range(1000))
    waste = [float(np.mean(lengths[b].max() - lengths[b])) for b in bucket]
    waste_fixed = [float(np.mean(lengths[b].max() - lengths[b])) for b in fixed]
    assert np.mean(waste) < 0.2 * np.mean(waste_fixed)


def test_a_health_rule_stops_training_with_a_reason(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, train_args: Any
) -> None:
    metrics = train.main(
        train_args(
            features_dir,
            tiny_model_dir,
            tmp_path,
            "--health-exploding-grad-norm",
            "1e-12",
            "--ensemble-linear",
            "false",
        )
    )
    assert metrics["status"] == "stopped_by_health_rule"
    assert metrics["stop_reason"] == "health_rule:exploding_gradient"
    assert metrics["steps"] == 2  # the first logged step
    saved = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert "exceeds" in saved["health_violations"][0]["reason"]


def test_early_stopping_on_validation_macro_f1(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, train_args: Any
) -> None:
    metrics = train.main(
        train_args(
            features_dir,
            tiny_model_dir,
            tmp_path,
            "--learning-rate",
            "0",
            "--eval-steps",
            "1",
            "--early-stopping-patience",
            "2",
            "--health-checks",
            "false",
            "--ensemble-linear",
            "false",
        )
    )
    assert metrics["stop_reason"] == "early_stopping"
    assert metrics["steps"] == 3 and metrics["best_step"] == 1


def test_script_mode_reads_sagemaker_environment(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(features_dir / "train"),
        "SM_CHANNEL_VALIDATION": str(features_dir / "validation"),
        "SM_CHANNEL_TEST": str(tmp_path / "no-test-channel"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
    }
    cmd = [
        sys.executable,
        str(ROOT / "training" / "train.py"),
        "--model_name_or_path",
        str(tiny_model_dir),
        "--max-steps",
        "4",
        "--batch_size",
        "8",
        "--ensemble_linear",
        "false",
        "--sagemaker_program",
        "train.py",  # unknown arguments are ignored
    ]
    done = subprocess.run(
        cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["steps"] == 4 and "test" not in metrics
    assert (tmp_path / "output" / "metrics.json").is_file()
    assert "val_macro_f1: " in done.stderr


def test_rating_target_trains_five_star_outputs_served_as_three_labels(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, train_args: Any
) -> None:
    from training.inference import SentimentPredictor

    metrics = train.main(
        train_args(features_dir, tiny_model_dir, tmp_path, "--target", "rating", "--precision", "bf16")
    )
    model_dir = tmp_path / "model"
    assert metrics["precision"] == "bf16"
    assert len(json.loads((model_dir / "config.json").read_text())["id2label"]) == 5
    decision = json.loads((model_dir / "decision.json").read_text())
    assert decision["head_to_label"] == [0, 0, 1, 2, 2]
    predictor = SentimentPredictor(model_dir)
    probs = predictor.predict_proba([{"title": "Meh", "text": "awful fit"}, "love this dress"])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0)
    expected = LABELS[int(np.argmax(predictor.predict_proba(["so-so fabric"])[0]))]
    assert predictor.predict(["so-so fabric"])[0]["label"] == expected
    assert metrics["test"]["tuned"]["n"] == metrics["rows"]["test"]


def test_a_bf16_checkpoint_trains_and_serves_in_fp32(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, train_args: Any
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.inference import SentimentPredictor, TorchLogits

    half = tmp_path / "bf16"
    AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir)).to(
        torch.bfloat16
    ).save_pretrained(half)
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(half)
    metrics = train.main(train_args(features_dir, half, tmp_path / "run"))
    saved = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "run" / "model"))
    assert saved.dtype == torch.float32 and metrics["status"] == "ok"
    saved.to(torch.bfloat16).save_pretrained(tmp_path / "run" / "model")
    predictor = SentimentPredictor(tmp_path / "run" / "model", backend="torch")
    assert isinstance(predictor._logits, TorchLogits) and predictor._logits.model.dtype == torch.float32
    assert predictor.predict_proba(["love this dress"]).shape == (1, 3)


def test_rating_targets_and_collapse() -> None:
    frame = pd.DataFrame({"label": [0, 0, 1, 2, 2], "rating": [1, 2, 3, 4, 5]})
    assert targets_of(frame, "label").tolist() == [0, 0, 1, 2, 2]
    assert targets_of(frame, "rating").tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="star rating"):
        targets_of(frame.assign(rating=[1, 2, None, 4, 9]), "rating")
    head = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    assert np.allclose(collapse_head(head, RATING_HEAD, len(LABELS)), [[0.3, 0.3, 0.4]])
    assert np.array_equal(collapse_head(head[:, :3], None, len(LABELS)), head[:, :3])  # no map: unchanged


@pytest.mark.parametrize("supported", [True, False])
def test_auto_precision_is_bf16_exactly_where_the_device_supports_it(
    supported: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: supported)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)
    expected = "bf16" if supported else "fp32"
    assert (resolve_precision("auto"), resolve_precision("auto", "cuda:0")) == (expected, expected)
    assert (resolve_precision("fp32", "cuda"), resolve_precision("bf16")) == ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8")


def test_auto_precision_is_fp32_on_a_torch_without_onednn(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def missing() -> bool:
        raise RuntimeError("no oneDNN in this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", missing)
    assert resolve_precision("auto") == "fp32"


@pytest.mark.parametrize(("cuda", "expected"), [(True, "cuda"), (False, "cpu")])
def test_auto_device_is_the_gpu_exactly_when_there_is_one(
    cuda: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from training.inference import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == expected
    assert (resolve_device("cpu"), resolve_device("cuda:1")) == ("cpu", "cuda:1")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
