"""The local cloud's ``InvokeEndpoint`` answers bad requests as SageMaker does.

A real endpoint of the local cloud (moto's runtime route, the variant server started for the endpoint
config) serves the linear model of ``reviewsense.localmodel`` with the project's ``training/inference.py``;
boto3 calls it as a Lambda would: a body without a review is the container's 400 inside a ``ModelError``,
an unknown content type its 415, a body over 6 MB SageMaker's own 413 (checked before any variant), and a
good CSV body is scored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from reviewsense.localcloud.endpoint_server import MAX_PAYLOAD_BYTES
from reviewsense.localmodel import model_archive
from tests.helpers.cloud import InProcessCloud, in_process_cloud
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_status

pytestmark = pytest.mark.localcloud
BUCKET = "endpoint-requests-test"
ROLE = "arn:aws:iam::123456789012:role/reviewsense-local-execution"
ENDPOINT = "reviewsense-requests"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with in_process_cloud(tmp_path_factory.mktemp("requests-cloud"), BUCKET) as cloud:
        deploy(cloud)
        yield cloud.client("sagemaker-runtime")
        cloud.client("sagemaker").delete_endpoint(EndpointName=ENDPOINT)


def deploy(cloud: InProcessCloud) -> None:
    cloud.client("s3").put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=model_archive(ROOT))
    sm = cloud.client("sagemaker")
    sm.create_model(
        ModelName=ENDPOINT,
        PrimaryContainer={
            "Image": "pytorch-inference:2.5-cpu-py311",
            "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz",
        },
        ExecutionRoleArn=ROLE,
    )
    sm.create_endpoint_config(
        EndpointConfigName=ENDPOINT,
        ProductionVariants=[
            {
                "VariantName": "champion",
                "ModelName": ENDPOINT,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    described = wait_status(
        lambda: sm.describe_endpoint(EndpointName=ENDPOINT), "EndpointStatus", ("Creating",), 120
    )
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")


def refused(runtime: Any, body: bytes | str, content_type: str = "application/json") -> dict[str, Any]:
    with pytest.raises(ClientError) as rejected:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType=content_type, Body=body)
    response: dict[str, Any] = rejected.value.response
    return response


def test_a_body_without_a_review_is_the_containers_400(runtime: Any) -> None:
    """It used to be scored as an empty review: {"foo": 1} came back "positive"."""
    error = refused(runtime, '{"foo": 1}')
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert error["Error"]["Message"].startswith("Received client error (400) from champion with message")
    assert (
        error["OriginalMessage"] == "instance 1 has no review text: expected a key 'text' (keys given: 'foo')"
    )
    assert refused(runtime, '{"instances": [{"text": null}]}')["OriginalStatusCode"] == 400
    assert refused(runtime, "{not json")["OriginalStatusCode"] == 400


def test_an_unknown_content_type_is_the_containers_415(runtime: Any) -> None:
    error = refused(runtime, b"great", "application/x-foo")
    assert (error["Error"]["Code"], error["OriginalStatusCode"]) == ("ModelError", 415)


def test_a_body_over_six_mb_is_sagemakers_413(runtime: Any) -> None:
    error = refused(runtime, json.dumps({"instances": ["x" * MAX_PAYLOAD_BYTES]}))
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"] == {"Code": "413", "Message": "HTTP content length exceeded 6291456 bytes."}


def test_a_csv_body_is_scored_one_review_per_row(runtime: Any) -> None:
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT,
        ContentType="text/csv",
        Accept="application/json",
        Body='"Awful, really","terrible, terrible"\n,"great\nand great"\n',
    )
    assert answer["InvokedProductionVariant"] == "champion"
    assert [p["label"] for p in json.loads(answer["Body"].read())["predictions"]] == ["negative", "positive"]
