"""End to end: the running local cloud (``reviewsense local up``) rejects what AWS rejects, over HTTP.

One local cloud process, two checks: a boto3 client's invalid CreateModelPackage gets AWS's
``ValidationException``; and a state machine whose ``aws-sdk:sagemaker`` task sends the same request
(moto's interpreter calls the server back over HTTP) fails that task with ``SageMaker.SageMakerException``,
the name AWS gives it, which a Catch on that name handles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers.cloud import Cloud, running_cloud
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud
GROUP = "strict-check"
INVALID_METADATA = {"gate_reasons": "passes the floors (no champion); it's fine"}
CAUGHT = {"ErrorEquals": ["SageMaker.SageMakerException"], "ResultPath": "$.error", "Next": "Caught"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("strict-cloud")) as c:
        yield c
        c.down()


@pytest.fixture(scope="module")
def group(cloud: Cloud) -> str:
    """The model package group both requests name (created once: each test can run alone)."""
    cloud.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    return GROUP


def test_an_invalid_request_over_http_is_rejected_as_aws_rejects_it(cloud: Cloud, group: str) -> None:
    sm = cloud.client("sagemaker")
    with pytest.raises(ClientError) as err:
        sm.create_model_package(ModelPackageGroupName=group, CustomerMetadataProperties=INVALID_METADATA)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"].startswith(
        "1 validation error detected: Value '{gate_reasons="
    )
    valid = {"gate_reasons": "passed_no_champion"}
    created = sm.create_model_package(ModelPackageGroupName=group, CustomerMetadataProperties=valid)
    described = sm.describe_model_package(ModelPackageName=created["ModelPackageArn"])
    assert (described["ModelPackageGroupName"], described["CustomerMetadataProperties"]) == (group, valid)


def test_a_state_machine_task_sending_it_fails_with_the_name_aws_gives(cloud: Cloud, group: str) -> None:
    definition = {
        "StartAt": "Register",
        "States": {
            "Register": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:createModelPackage",
                "Parameters": {
                    "ModelPackageGroupName": group,
                    "CustomerMetadataProperties": INVALID_METADATA,
                },
                "Catch": [
                    {
                        "ErrorEquals": ["SageMaker.SageMakerException"],
                        "ResultPath": "$.error",
                        "Next": "Caught",
                    }
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="strict-check", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="strict-check-1", input="{}")["executionArn"]

    def finished() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=execution)
        return None if described["status"] == "RUNNING" else dict(described)

    described = wait_until(finished, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "SageMaker.SageMakerException"
    assert "at 'customerMetadataProperties' failed to satisfy constraint" in error["Cause"]
