"""The state machine definitions keep their contracts with the code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
from moto import mock_aws

import app
from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.domain.endpoints import DeploymentOutcome
from chalicelib.domain.training_health import METRIC_DEFINITIONS
from reviewsense.localcloud.provision import Provisioner, substitute
from tests.helpers.documents import objects
from tests.helpers.paths import ROOT

DEFINITIONS = sorted((ROOT / "statemachines").glob("*.asl.json"))


def test_the_training_pipeline_is_defined() -> None:
    assert [p.name for p in DEFINITIONS] == ["training_pipeline.asl.json"]


# The error names Step Functions gives a failed task (a Retry or Catch on any other name never fires):
# - aws-sdk integrations run the AWS SDK for Java 2: ``<Service>.<Error>``, the error shapes of the service's
#   API model with ``Exception`` appended where missing (``SageMaker.ResourceNotFoundException``), and the
#   SDK's generic ``<Service>Exception`` for every error the model does not name: throttling, internal
#   errors and ValidationException arrive as ``SageMaker.SageMakerException``. (``AmazonSageMakerException``
#   is the older SDK's name, raised by the optimized ``arn:aws:states:::sagemaker:*`` integrations only.)
# - Lambda tasks: the Lambda API's errors plus the client-side names AWS documents for Lambda tasks, and the
#   ``errorType`` of our own functions (the classes of chalicelib/errors.py).
# - The optimized sns:publish integration names errors after the wire code, which for throttling is not in
#   SNS's model; its tasks retry ``States.TaskFailed`` (any failure of a notification is worth a retry).
SERVICES = {
    "sagemaker": ("SageMaker", ["SageMakerException"]),
    "lambda": (
        "Lambda",
        ["AWSLambdaException", "SdkClientException", "ClientExecutionTimeoutException"],
    ),
}
STATES_ERRORS = {
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
}
# What each kind of task must retry: the names AWS gives throttling and transient service errors.
MUST_RETRY = {
    "sagemaker": {"SageMaker.SageMakerException"},
    "sns": {"States.TaskFailed"},
    "lambda": {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    },
}


def aws_error_names(service: str) -> set[str]:
    if service not in SERVICES:
        return set()
    prefix, generic = SERVICES[service]
    model = botocore.session.get_session().get_service_model(service)
    names = {
        shape.name if shape.name.endswith("Exception") else f"{shape.name}Exception"
        for shape in model.error_shapes
    }
    return {f"{prefix}.{name}" for name in names | set(generic)}


def app_error_names() -> set[str]:
    return {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ReviewSenseError)
    }


def task_service(resource: str) -> str:
    if resource.startswith("arn:aws:states:::aws-sdk:"):
        return resource.split(":")[6]
    if resource.startswith("arn:aws:states:::sns:"):
        return "sns"
    assert resource.startswith("${") and resource.endswith("FunctionArn}"), resource
    return "lambda"


def tasks(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for state in objects(node):
        for name, child in state.get("States", {}).items():
            if child.get("Type") == "Task":
                yield name, child


def test_the_aws_naming_rule_gives_the_names_aws_documents() -> None:
    assert {"SageMaker.ResourceNotFoundException", "SageMaker.ResourceLimitExceededException"} <= (
        aws_error_names("sagemaker")
    )
    assert "SageMaker.SageMakerException" in aws_error_names("sagemaker")
    assert "SageMaker.ThrottlingException" not in aws_error_names("sagemaker")
    assert "SageMaker.InternalFailure" not in aws_error_names("sagemaker")
    assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= aws_error_names("lambda")


def test_every_error_name_in_retry_and_catch_is_one_aws_or_the_app_can_raise() -> None:
    """A Retry on a name nothing raises never fires (one throttled poll used to fail a whole run)."""
    for path in DEFINITIONS:
        definition = json.loads(path.read_text())
        for state_name, task in tasks(definition):
            service = task_service(task["Resource"])
            allowed = STATES_ERRORS | aws_error_names(service)
            if service == "lambda":
                allowed |= app_error_names()
            for clause in [*task.get("Retry", []), *task.get("Catch", [])]:
                for name in clause["ErrorEquals"]:
                    assert name in allowed, (path.name, state_name, name)
        anywhere = STATES_ERRORS | app_error_names() | {n for s in SERVICES for n in aws_error_names(s)}
        for state in objects(definition):  # Parallel/Map catchers also see their branches' errors
            for clause in state.get("Catch", []) + state.get("Retry", []):
                for name in clause["ErrorEquals"]:
                    assert name in anywhere, (path.name, name)


def test_every_task_retries_throttling_and_transient_errors() -> None:
    for path in DEFINITIONS:
        for state_name, task in tasks(json.loads(path.read_text())):
            retried = {name for retrier in task.get("Retry", []) for name in retrier["ErrorEquals"]}
            missing = MUST_RETRY[task_service(task["Resource"])] - retried
            assert not missing, (path.name, state_name, missing)


def test_the_deployment_choice_branches_on_every_outcome_the_domain_gives() -> None:
    definition = json.loads((ROOT / "statemachines" / "training_pipeline.asl.json").read_text())
    choice = definition["States"]["IsEndpointReady"]
    branches = {c["StringEquals"]: c["Next"] for c in choice["Choices"]}
    assert set(branches) == {o.value for o in DeploymentOutcome}
    assert branches[DeploymentOutcome.DEPLOYED] == "NotifyDeployed"
    assert branches[DeploymentOutcome.PENDING] == "WaitEndpoint"
    assert branches[DeploymentOutcome.FAILED] == choice["Default"] == "EndpointFailed"
    poll = definition["States"][definition["States"]["WaitEndpoint"]["Next"]]
    assert poll["Resource"] == "${PipelineDeployStatusFunctionArn}" and poll["Next"] == "IsEndpointReady"


def test_definitions_use_only_what_the_local_cloud_executes() -> None:
    for path in DEFINITIONS:
        text = path.read_text()
        assert ".sync" not in text and "JSONata" not in text and '"Assign"' not in text
        definition = json.loads(text)
        for node in objects(definition):
            if node.get("Type") == "Task":
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
