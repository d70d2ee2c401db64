"""``--epochs`` decides how long training runs; ``--max-steps`` caps it only when given.

On main the default ``max_steps`` was 250, so the dev stage's ``epochs: 3`` (about 1,700 steps on the
full dataset) silently stopped after 250 steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Settings
from tests.helpers.paths import ROOT
from training import packaged
from training.config import parse_config
from training.featurize import FeaturizeConfig
from training.fit import plan_steps
from training.train_config import TrainConfig

FULL_DATASET_TRAIN_ROWS = 18_000


def stage_settings(stage: str) -> Settings:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = {**config.get("environment_variables", {}), **config["stages"][stage]["environment_variables"]}
    return Settings.from_env(env)


def stage_train_config(stage: str) -> TrainConfig:
    hyperparameters = json.loads(stage_settings(stage).training_hyperparameters)
    argv = [arg for key, value in hyperparameters.items() for arg in (f"--{key}", str(value))]
    return parse_config(TrainConfig, argv)


def aws_stages() -> list[str]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return [stage for stage in config["stages"] if stage != "local"]


def test_epochs_are_respected_when_max_steps_is_not_given() -> None:
    cfg = parse_config(TrainConfig, ["--epochs", "3", "--batch-size", "32"])
    assert cfg.max_steps == 0
    per_epoch, total = plan_steps(FULL_DATASET_TRAIN_ROWS, cfg.batch_size, cfg.epochs, cfg.max_steps)
    assert per_epoch == math.ceil(FULL_DATASET_TRAIN_ROWS / 32)
    assert total == 3 * per_epoch


def test_an_explicit_max_steps_caps_training() -> None:
    cfg = parse_config(TrainConfig, ["--epochs", "3", "--max-steps", "250"])
    assert plan_steps(FULL_DATASET_TRAIN_ROWS, cfg.batch_size, cfg.epochs, cfg.max_steps)[1] == 250
    assert plan_steps(100, 32, 0.5, 0) == (4, 2)  # fractions of an epoch, rounded up


@pytest.mark.parametrize("stage", aws_stages())
def test_aws_stages_train_for_their_epochs(stage: str) -> None:
    cfg = stage_train_config(stage)
    per_epoch, total = plan_steps(FULL_DATASET_TRAIN_ROWS, cfg.batch_size, cfg.epochs, cfg.max_steps)
    assert total == math.ceil(cfg.epochs * per_epoch)
    assert total > 250


def test_the_local_demo_budget_caps_its_steps_explicitly() -> None:
    # The learning-rate schedule decays over the planned steps: a time cap alone would stop training
    # before the rate has come down, so the demo names its 300-step budget.
    cfg = stage_train_config("local")
    assert plan_steps(FULL_DATASET_TRAIN_ROWS, cfg.batch_size, cfg.epochs, cfg.max_steps)[1] == 300


# The demo's budget: fewer steps and, because a short run under-learns the rare classes (the gate's
# negative-recall floor rejected a 300-step student without them), square-root class weights.
DEMO_CAPS = {"max_steps", "max_train_minutes", "progress_bar", "logging_steps", "class_weighting"}


@pytest.mark.parametrize("stage", aws_stages())
def test_every_stage_trains_the_distilled_student_of_make_train_serving(stage: str) -> None:
    """One recipe: AWS stages and the local demo (capped) distil the same student from the shipped teacher."""
    from training.distill import TEACHER_FILE, resolve_teacher_path

    aws, local = asdict(stage_train_config(stage)), asdict(stage_train_config("local"))
    assert {k: v for k, v in aws.items() if k not in DEMO_CAPS} == {
        k: v for k, v in local.items() if k not in DEMO_CAPS
    }
    assert resolve_teacher_path(aws["teacher_probabilities"]) == TEACHER_FILE
    assert TEACHER_FILE.is_file() and aws["num_hidden_layers"] == 3
    makefile = (ROOT / "Makefile").read_text()
    for key in ("teacher-probabilities", "distill-alpha", "distill-temperature", "learning-rate", "seed"):
        flag = f"--{key} {json.loads(stage_settings(stage).training_hyperparameters)[key]}"
        assert flag in makefile, flag  # make train-serving's STUDENT_ARGS
    assert "STUDENT_LAYERS ?= 3" in makefile


@pytest.mark.parametrize("stage", aws_stages())
def test_aws_stages_never_default_to_a_local_only_encoder(
    stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a SageMaker container the offline weights package is missing: names must still resolve."""
    monkeypatch.setattr(packaged, "minilm_installed", lambda: False)
    encoder = stage_train_config(stage).model_name_or_path
    tokenizer = parse_config(FeaturizeConfig, []).tokenizer
    for name in (encoder, tokenizer):
        assert not name.startswith("packaged:"), name
        assert packaged.resolve(name) == name  # a hub id (or path), passed to from_pretrained unchanged


def test_the_default_encoder_is_the_hub_id_served_offline_where_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = parse_config(TrainConfig, [])
    assert cfg.model_name_or_path == packaged.MINILM_HUB_ID == parse_config(FeaturizeConfig, []).tokenizer
    assert Path(packaged.resolve(packaged.MINILM_HUB_ID), "config.json").is_file()  # the package, here
    monkeypatch.setattr(packaged, "minilm_installed", lambda: False)
    assert packaged.resolve(packaged.MINILM_HUB_ID) == packaged.MINILM_HUB_ID  # the hub, in a container


def test_training_runs_its_epochs_without_max_steps(
    features_dir: Path, tiny_model_dir: Path, tmp_path: Path, train_args: Any
) -> None:
    from training import train

    args = list(train_args(features_dir, tiny_model_dir, tmp_path))
    at = args.index("--max-steps")
    del args[at : at + 2]
    args += ["--epochs", "2", "--early-stopping-patience", "0", "--ensemble-linear", "false"]
    metrics = train.main(args)
    per_epoch = math.ceil(metrics["rows"]["train"] / 8)
    assert metrics["steps"] == 2 * per_epoch
    assert metrics["stop_reason"] == "completed"
    capped = train.main([*args, "--max-steps", "3", "--model-dir", str(tmp_path / "capped")])
    assert (capped["steps"], capped["stop_reason"]) == (3, "max_steps")


def test_an_s3_encoder_becomes_an_input_channel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from chalicelib.domain.pipeline import encoder_channel

    uri = "s3://lake/models/base/all-MiniLM-L6-v2/"
    hyperparameters, channel = encoder_channel({"model-name-or-path": uri, "epochs": "3"})
    assert channel == uri
    assert hyperparameters == {"model-name-or-path": "channel:encoder", "epochs": "3"}
    assert encoder_channel({"model-name-or-path": "roberta-base"}) == (
        {"model-name-or-path": "roberta-base"},
        None,
    )
    monkeypatch.setenv("SM_CHANNEL_ENCODER", str(tmp_path))
    assert packaged.resolve("channel:encoder") == str(tmp_path)
    monkeypatch.delenv("SM_CHANNEL_ENCODER")
    with pytest.raises(packaged.PackagedModelError, match="no input channel 'encoder'"):
        packaged.resolve("channel:encoder")
