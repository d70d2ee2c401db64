"""The scoring adapter turns the endpoint's client errors into ``ModelRejectedError`` by status alone.

Fed the answers botocore parses from SageMaker (``Stubber``): a ``ModelError`` (HTTP 424) carrying the
container's ``OriginalStatusCode``, and SageMaker's own 413 for a body over 6 MB (no error type: botocore's
code is the status). A 4xx refusal is never retried (the same body gets the same answer) and names its
quarantine reason; 408 / 429 / 5xx stay retryable.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.adapters.runtime import ModelRejectedError, SageMakerRuntimeScorer
from chalicelib.domain.model_rejection import ModelRejection
from chalicelib.errors import DependencyUnavailableError, TerminalError

INSTANCES = [{"feedback_id": "a" * 32, "text": "bad", "title": ""}]


def scorer() -> tuple[SageMakerRuntimeScorer, Stubber, list[float]]:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    sleeps: list[float] = []
    return SageMakerRuntimeScorer(client, "e", attempts=3, sleep=sleeps.append), Stubber(client), sleeps


@pytest.mark.parametrize(
    ("code", "status", "fields", "reason"),
    [
        (
            "ModelError",
            424,
            {"OriginalStatusCode": 400, "OriginalMessage": "instance 1 has no review text"},
            ModelRejection.BAD_REQUEST,
        ),
        (
            "ModelError",
            424,
            {"OriginalStatusCode": 415, "OriginalMessage": "no"},
            ModelRejection.UNSUPPORTED_CONTENT_TYPE,
        ),
        (
            "ModelError",
            424,
            {"OriginalStatusCode": 406, "OriginalMessage": "no"},
            ModelRejection.NOT_ACCEPTABLE,
        ),
        ("413", 413, {}, ModelRejection.PAYLOAD_TOO_LARGE),
    ],
)
def test_a_client_error_of_the_model_is_a_rejection_with_its_reason_not_retried(
    code: str, status: int, fields: dict[str, Any], reason: ModelRejection
) -> None:
    s, stubber, sleeps = scorer()
    stubber.add_client_error("invoke_endpoint", code, "message", status, modeled_fields=fields or None)
    with stubber, pytest.raises(ModelRejectedError) as raised:
        s.score("fanin-1", INSTANCES)
    assert raised.value.rejection is reason
    assert raised.value.status == fields.get("OriginalStatusCode", status)
    assert isinstance(raised.value, TerminalError)
    assert sleeps == []


def test_the_message_is_kept_but_never_decides() -> None:
    s, stubber, _ = scorer()
    stubber.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "Received client error (400)",
        424,
        modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": "Internal server error, retry"},
    )
    with stubber, pytest.raises(ModelRejectedError) as raised:
        s.score("fanin-1", INSTANCES)
    assert raised.value.detail == "Internal server error, retry"
    assert raised.value.rejection is ModelRejection.BAD_REQUEST


@pytest.mark.parametrize("original", [408, 429, 500, 503])
def test_a_model_error_that_may_pass_later_is_still_retried(original: int) -> None:
    s, stubber, sleeps = scorer()
    for _ in range(3):
        stubber.add_client_error(
            "invoke_endpoint", "ModelError", "m", 424, modeled_fields={"OriginalStatusCode": original}
        )
    retryable = original != 408  # 408: not retried here, not quarantined: the ClientError reaches the caller
    with stubber, pytest.raises(DependencyUnavailableError if retryable else ClientError) as raised:
        s.score("fanin-1", INSTANCES)
    assert not isinstance(raised.value, ModelRejectedError)
    assert len(sleeps) == (2 if retryable else 0)
