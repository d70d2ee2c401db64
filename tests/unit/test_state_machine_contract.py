"""The state machine definitions keep their contracts with the code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

import app
from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.domain.training_health import METRIC_DEFINITIONS
from reviewsense.localcloud.provision import Provisioner, substitute

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((ROOT / "statemachines").glob("*.asl.json"))
BUILTIN_PREFIXES = ("States.", "Lambda.", "SageMaker.", "SNS.")


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_the_training_pipeline_is_defined() -> None:
    assert [p.name for p in DEFINITIONS] == ["training_pipeline.asl.json"]


def test_every_error_name_in_retry_and_catch_exists() -> None:
    for path in DEFINITIONS:
        for node in walk(json.loads(path.read_text())):
            for name in node.get("ErrorEquals", []):
                assert name.startswith(BUILTIN_PREFIXES) or issubclass(
                    getattr(errors, name), errors.ReviewSenseError
                ), (
                    path.name,
                    name,
                )


def test_definitions_use_only_what_the_local_cloud_executes() -> None:
    for path in DEFINITIONS:
        text = path.read_text()
        assert ".sync" not in text and "JSONata" not in text and '"Assign"' not in text
        definition = json.loads(text)
        for node in walk(definition):
            if node.get("Type") == "Task" and "sns:publish" not in node["Resource"]:
                assert "Retry" in node, node
        for name, state in definition["States"].items():
            if state["Type"] in ("Task", "Parallel") and name != "NotifyFailure":
                assert "Catch" in state, f"{name} must catch into the failure branch"


def test_every_placeholder_has_a_value() -> None:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        provisioner = Provisioner(session, Settings(), None)  # type: ignore[arg-type]
        provisioned = provisioner.provision(app.app, None)
        values = provisioner.placeholder_values(provisioned, "arn:aws:iam::123456789012:role/x")
    for path in DEFINITIONS:
        json.loads(substitute(path.read_text(), values))


def test_metric_definitions_parse_what_train_py_prints() -> None:
    import re

    line = "step: 3 epoch: 1.0 val_loss: 0.61 val_acc: 0.84 val_macro_f1: 0.69 train_loss: nan"
    found = {d["Name"]: re.search(d["Regex"], line) for d in METRIC_DEFINITIONS}
    assert found["val_macro_f1"] and found["val_macro_f1"].group(1) == "0.69"
    assert found["train_loss"] and found["train_loss"].group(1) == "nan"
