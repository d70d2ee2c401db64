"""Every error translation the adapters make, fed the error shapes AWS really returns.

Each case stubs one AWS answer with botocore's ``Stubber`` (the same ``ClientError`` botocore builds
from a real response: code, message, HTTP status) and checks what the adapter turns it into. The
messages are AWS's own, as they appear in public error reports; the "not found" predicate must tell
them apart from a ``ValidationException`` that means a malformed request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.adapters.aws_errors import is_not_found, translate
from chalicelib.adapters.glue import GlueCatalog
from chalicelib.adapters.logs import LogReader
from chalicelib.adapters.s3 import ObjectNotFoundError, S3ObjectStore
from chalicelib.adapters.sagemaker import SageMakerGateway
from chalicelib.adapters.stepfunctions import StepFunctionsGateway
from chalicelib.errors import AlreadyExistsError, DependencyUnavailableError, ResourceNotFoundError

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
#: SageMaker's answers for resources that do not exist (code ValidationException, HTTP 400).
SAGEMAKER_NOT_FOUND = {
    "describe_endpoint": f'Could not find endpoint "{ARN}:endpoint/reviewsense-prod".',
    "describe_endpoint_config": f'Could not find endpoint configuration "{ARN}:endpoint-config/rs-1-cfg".',
    "describe_model": f'Could not find model "{ARN}:model/rs-1".',
    "delete_endpoint": f'Could not find endpoint "{ARN}:endpoint/reviewsense-prod".',
    "delete_endpoint_config": f'Could not find endpoint configuration "{ARN}:endpoint-config/rs-1-cfg".',
    "delete_model": f'Could not find model "{ARN}:model/rs-1".',
}
#: A ValidationException that is NOT about a missing resource: a malformed request.
MALFORMED = (
    "1 validation error detected: Value 'bad name!' at 'endpointName' failed to satisfy constraint: "
    "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
)


def client_error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "AnyOperation",
    )


@pytest.fixture
def sagemaker() -> Iterator[tuple[SageMakerGateway, Stubber]]:
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield SageMakerGateway(client), stubber
        stubber.assert_no_pending_responses()


# -- the predicate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", sorted(set(SAGEMAKER_NOT_FOUND.values())))
def test_sagemakers_not_found_messages_are_not_found(message: str) -> None:
    assert is_not_found(client_error("ValidationException", message))


@pytest.mark.parametrize(
    "message",
    [
        MALFORMED,
        f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/rs-1-cfg".',
        f'Cannot update in-progress endpoint "{ARN}:endpoint/reviewsense-prod".',
        "Endpoint reviewsense-prod of account 123456789012 not found.",  # InvokeEndpoint says ValidationError
    ],
)
def test_other_validation_errors_are_not_read_as_not_found(message: str) -> None:
    assert not is_not_found(client_error("ValidationException", message))


def test_invoke_endpoint_on_a_missing_endpoint_is_not_found_and_other_validation_errors_are_not() -> None:
    missing = "Endpoint reviewsense-prod of account 123456789012 not found."
    assert is_not_found(client_error("ValidationError", missing))
    assert not is_not_found(client_error("ValidationError", "Content-Type header is not supported."))


@pytest.mark.parametrize(
    ("code", "status"),
    [("ResourceNotFound", 400), ("ResourceNotFoundException", 400), ("NoSuchKey", 404), ("404", 404)],
)
def test_not_found_codes_are_not_found_whatever_the_message(code: str, status: int) -> None:
    assert isinstance(
        translate(client_error(code, "Requested resource not found.", status)), ResourceNotFoundError
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("Throttling", 400), ("SlowDown", 503), ("InternalFailure", 500)],
)
def test_throttling_and_server_errors_become_retryable(code: str, status: int) -> None:
    assert isinstance(translate(client_error(code, "Rate exceeded", status)), DependencyUnavailableError)


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "AccessDenied", "ValidationException", "ResourceLimitExceeded"]
)
def test_everything_else_is_re_raised_unchanged(code: str) -> None:
    exc = client_error(code, "User: arn:aws:sts::123456789012:assumed-role/x is not authorized")
    assert translate(exc) is exc


# -- the SageMaker adapter ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(SAGEMAKER_NOT_FOUND))
def test_a_missing_resource_is_none_or_false(sagemaker: Any, operation: str) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error(operation, "ValidationException", SAGEMAKER_NOT_FOUND[operation], 400)
    expected = None if operation.startswith("describe") else False
    assert getattr(gateway, operation)("rs-1") is expected


@pytest.mark.parametrize("operation", sorted(SAGEMAKER_NOT_FOUND))
def test_a_malformed_request_is_not_taken_for_a_missing_resource(sagemaker: Any, operation: str) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error(operation, "ValidationException", MALFORMED, 400)
    with pytest.raises(ClientError) as raised:
        getattr(gateway, operation)("rs-1")
    assert raised.value.response["Error"]["Message"] == MALFORMED


def test_access_denied_reaches_the_caller(sagemaker: Any) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error(
        "describe_endpoint", "AccessDeniedException", "not authorized to perform: sagemaker:DescribeEndpoint"
    )
    with pytest.raises(ClientError) as raised:
        gateway.describe_endpoint("reviewsense-prod")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"


def test_throttling_is_retryable(sagemaker: Any) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(DependencyUnavailableError, match="ThrottlingException"):
        gateway.describe_training_job("rs-1-train")


def test_a_missing_training_job_is_resource_not_found(sagemaker: Any) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error(
        "describe_training_job", "ResourceNotFound", "Requested resource not found.", 400
    )
    with pytest.raises(ResourceNotFoundError):
        gateway.describe_training_job("rs-1-train")


GROUP = "reviewsense-sentiment"
GROUP_MISSING = f"ModelPackageGroup {ARN}:model-package-group/{GROUP} does not exist."
GROUP_DESCRIBED = {
    "ModelPackageGroupName": GROUP,
    "ModelPackageGroupArn": f"{ARN}:model-package-group/{GROUP}",
    "CreationTime": "2026-11-29T00:00:00Z",
    "CreatedBy": {},
    "ModelPackageGroupStatus": "Completed",
}


def test_the_model_package_group_is_created_once(sagemaker: Any) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error("describe_model_package_group", "ValidationException", GROUP_MISSING, 400)
    stubber.add_response(
        "create_model_package_group", {"ModelPackageGroupArn": GROUP_DESCRIBED["ModelPackageGroupArn"]}
    )
    stubber.add_response("describe_model_package_group", GROUP_DESCRIBED)
    gateway.ensure_model_package_group(GROUP, "d")  # missing: created
    gateway.ensure_model_package_group(GROUP, "d")  # there: no create call (the stubber would fail)


def test_a_lost_race_to_create_the_group_is_fine_and_a_real_failure_is_not(sagemaker: Any) -> None:
    gateway, stubber = sagemaker
    # Another run created it between our Describe and Create: the second Describe finds it.
    stubber.add_client_error("describe_model_package_group", "ValidationException", GROUP_MISSING, 400)
    stubber.add_client_error("create_model_package_group", "ValidationException", "already exists", 400)
    stubber.add_response("describe_model_package_group", GROUP_DESCRIBED)
    gateway.ensure_model_package_group(GROUP, "d")
    # AccessDenied on Create, and the group still missing: the caller hears of it.
    stubber.add_client_error("describe_model_package_group", "ValidationException", GROUP_MISSING, 400)
    stubber.add_client_error("create_model_package_group", "AccessDeniedException", "not authorized", 400)
    stubber.add_client_error("describe_model_package_group", "ValidationException", GROUP_MISSING, 400)
    with pytest.raises(ClientError) as raised:
        gateway.ensure_model_package_group(GROUP, "d")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"


def test_listing_a_group_that_does_not_exist_yet_lists_nothing(sagemaker: Any) -> None:
    gateway, stubber = sagemaker
    stubber.add_client_error("list_model_packages", "ValidationException", GROUP_MISSING, 400)
    assert list(gateway.model_packages(GROUP)) == []
    stubber.add_client_error("list_model_packages", "ValidationException", MALFORMED, 400)
    with pytest.raises(ClientError):
        list(gateway.model_packages(GROUP))


# -- Step Functions, CloudWatch Logs, Glue, S3 ---------------------------------------------------------------


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_a_duplicate_execution_is_already_exists() -> None:
    client, stubber = stubbed("stepfunctions")
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:reviewsense-prod-training-pipeline"
    stubber.add_client_error(
        "start_execution", "ExecutionAlreadyExists", f"Execution Already Exists: '{machine}:schedule-1'", 400
    )
    stubber.add_client_error(
        "start_execution", "StateMachineDoesNotExist", "State Machine Does Not Exist", 400
    )
    with stubber:
        with pytest.raises(AlreadyExistsError):
            StepFunctionsGateway(client).start_execution(machine, "schedule-1", {})
        with pytest.raises(ClientError) as raised:
            StepFunctionsGateway(client).start_execution(machine, "schedule-1", {})
    assert raised.value.response["Error"]["Code"] == "StateMachineDoesNotExist"


def test_a_job_that_has_not_logged_yet_has_no_lines_and_denial_is_raised() -> None:
    client, stubber = stubbed("logs")
    stubber.add_client_error(
        "describe_log_streams", "ResourceNotFoundException", "The specified log group does not exist.", 400
    )
    stubber.add_client_error("describe_log_streams", "AccessDeniedException", "not authorized", 400)
    with stubber:
        assert LogReader(client).lines("/aws/sagemaker/TrainingJobs", "rs-1") == []
        with pytest.raises(ClientError):
            LogReader(client).lines("/aws/sagemaker/TrainingJobs", "rs-1")


def test_glue_already_exists_is_fine_and_anything_else_raises() -> None:
    client, stubber = stubbed("glue")
    stubber.add_client_error("create_database", "AlreadyExistsException", "Database already exists.", 400)
    stubber.add_client_error("create_database", "AccessDeniedException", "not authorized", 400)
    with stubber:
        GlueCatalog(client).ensure_database("reviewsense")
        with pytest.raises(ClientError):
            GlueCatalog(client).ensure_database("reviewsense")


def test_s3_missing_object_and_throttling() -> None:
    client, stubber = stubbed("s3")
    stubber.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
    stubber.add_client_error(
        "head_object", "404", "Not Found", 404
    )  # HEAD has no body: the code is the status
    stubber.add_client_error("get_object", "SlowDown", "Please reduce your request rate.", 503)
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    store = S3ObjectStore(client)
    with stubber:
        assert store.get_json("lake", "missing.json") is None
        with pytest.raises(ObjectNotFoundError):
            store.head("lake", "missing.json")
        with pytest.raises(DependencyUnavailableError):
            store.get("lake", "busy.json")
        with pytest.raises(ClientError) as raised:
            store.get("lake", "secret.json")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
