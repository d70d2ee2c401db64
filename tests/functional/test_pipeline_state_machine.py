"""The real training-pipeline ASL, executed by moto's interpreter in-process with the real Lambda steps.

moto's SageMaker jobs complete at once, so a run goes straight to the gate, registration and the
deployment; the endpoints fail as AWS's do (``tests/helpers/awslike.py``). What is checked here is
the state machine's own logic: a failed endpoint deployment takes the failure branch and is cleaned
up, a rolled-back update fails the run while the champion keeps serving, and a throttled SageMaker
poll is retried instead of failing the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.config import Settings
from chalicelib.container import Container
from reviewsense.localcloud.provision import Provisioned, Provisioner, substitute
from tests.helpers import awslike
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_status

DEFINITION = ROOT / "statemachines" / "training_pipeline.asl.json"


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto with its ASL interpreter switched on (the conftest's ``lake`` builds on this)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def machine(lake: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    import app

    awslike.install(monkeypatch)
    provisioner = Provisioner(lake, settings, None)  # type: ignore[arg-type]
    out = Provisioned()
    out.topics["alerts"] = lake.client("sns").create_topic(Name="reviewsense-local-alerts")["TopicArn"]
    lam = lake.client("lambda")
    for name in app.app.handler_map:
        function = lam.get_function(FunctionName=provisioner.function_name(name))
        out.functions[name] = function["Configuration"]["FunctionArn"]
    role = "arn:aws:iam::123456789012:role/reviewsense-local-execution"
    definition = substitute(DEFINITION.read_text(), provisioner.placeholder_values(out, role))
    sfn = lake.client("stepfunctions")
    return str(
        sfn.create_state_machine(name="training-pipeline", definition=definition, roleArn=role)[
            "stateMachineArn"
        ]
    )


def put_json(lake: Any, uri: str, value: Any) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    lake.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode())


def run(lake: Any, settings: Settings, machine: str, run_id: str) -> tuple[str, list[str]]:
    """Run ``run_id`` (its candidate passes the gate); the final status and the states entered."""
    plan = Container(settings, lake).pipeline_steps.prepare({"run_id": run_id})
    evaluation = {"macro_f1": 0.72, "accuracy": 0.9, "per_class": {"negative": {"recall": 0.7}}}
    put_json(lake, plan["candidate_evaluation_uri"], evaluation)
    if plan["has_champion"]:
        put_json(lake, plan["champion_evaluation_uri"], evaluation)
    sfn = lake.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=machine, name=run_id, input=json.dumps({"run_id": run_id, "poll_seconds": 0})
    )["executionArn"]
    status = wait_status(lambda: sfn.describe_execution(executionArn=arn), "status", ("RUNNING",), 120)[
        "status"
    ]
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return str(status), entered


def endpoint(lake: Any, settings: Settings) -> dict[str, Any] | None:
    sm = lake.client("sagemaker")
    names = {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}
    return (
        sm.describe_endpoint(EndpointName=settings.endpoint_name) if settings.endpoint_name in names else None
    )


def test_a_failed_first_create_fails_the_run_and_cleanup_deletes_the_endpoint(
    lake: Any, settings: Settings, machine: str
) -> None:
    status, entered = run(lake, settings, machine, f"20261126-101500-{awslike.BROKEN}")
    assert status == "FAILED", entered
    assert entered[-4:] == ["EndpointFailed", "Cleanup", "NotifyFailure", "Failed"]
    assert "NotifyDeployed" not in entered
    assert endpoint(lake, settings) is None  # DeleteEndpoint, the only call a Failed endpoint takes

    status, entered = run(lake, settings, machine, "20261126-111500-good")
    assert status == "SUCCEEDED", entered
    live = endpoint(lake, settings)
    assert live is not None and live["EndpointStatus"] == "InService"
    assert live["EndpointConfigName"] == "rs-20261126-111500-good-cfg"


def test_a_rolled_back_update_fails_the_run_and_the_champion_keeps_serving(
    lake: Any, settings: Settings, machine: str
) -> None:
    assert run(lake, settings, machine, "20261126-101500-champion")[0] == "SUCCEEDED"
    status, entered = run(lake, settings, machine, f"20261126-111500-{awslike.BROKEN}")
    assert status == "FAILED", entered
    assert "EndpointFailed" in entered and "NotifyDeployed" not in entered
    live = endpoint(lake, settings)
    assert live is not None and live["EndpointStatus"] == "InService"
    assert live["EndpointConfigName"] == "rs-20261126-101500-champion-cfg"
    container = Container(settings, lake)
    assert [m["live"] for m in container.registry.list_models()] == ["", "champion"]  # newest first
    assert [h["status"] for h in container.rollout.deployments()] == ["deployed", "failed"]


@pytest.mark.parametrize(
    ("describe", "job_state"),
    [("describe_training_job", "DescribeTrain"), ("describe_processing_job", "DescribeFeaturize")],
)
def test_a_throttled_poll_is_retried(
    lake: Any,
    settings: Settings,
    machine: str,
    monkeypatch: pytest.MonkeyPatch,
    describe: str,
    job_state: str,
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import SageMakerModelBackend

    original = getattr(SageMakerModelBackend, describe)
    calls: list[str] = []

    def throttled_once(self: Any, name: str) -> Any:
        calls.append(name)
        if len(calls) == 1:
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        return original(self, name)

    monkeypatch.setattr(SageMakerModelBackend, describe, throttled_once)
    status, entered = run(lake, settings, machine, "20261126-101500-throttled")
    assert status == "SUCCEEDED", entered
    assert len(calls) >= 2 and entered.count(job_state) == 1  # one state, retried inside it
