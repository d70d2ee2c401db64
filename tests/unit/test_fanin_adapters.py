"""The fan-in's adapters fed the answers AWS really gives (botocore ``Stubber``: code, status, fields).

InvokeEndpoint's errors come from its service model: ``ThrottlingException`` (400),
``ServiceUnavailable`` (503), ``InternalFailure`` (500), ``ModelNotReadyException`` (429),
``ModelError`` (424, with the container's ``OriginalStatusCode``) and ``ValidationError`` (400, also
for an endpoint that does not exist). Which are retried, how long the adapter waits, and what reaches
the caller are pinned here, as are the queue, topic and table adapters' translations.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from chalicelib.adapters.feedback_store import FeedbackStore, from_attribute, to_attribute
from chalicelib.adapters.messaging import SnsTopic, SqsQueue
from chalicelib.adapters.runtime import INFERENCE_ID, SageMakerRuntimeScorer, UnexpectedPredictionsError
from chalicelib.errors import DependencyUnavailableError, ResourceNotFoundError

ENDPOINT = "reviewsense-prod-sentiment"
INSTANCES = [
    {"feedback_id": "a" * 32, "text": "bad", "title": ""},
    {"feedback_id": "b" * 32, "text": "ok", "title": ""},
]
NEGATIVE = {"negative": 0.9, "neutral": 0.06, "positive": 0.04}
POSITIVE = {"negative": 0.1, "neutral": 0.1, "positive": 0.8}
PREDICTIONS = {
    "predictions": [
        {"label": "negative", "label_id": 0, "score": 0.9, "probabilities": NEGATIVE},
        {"label": "positive", "label_id": 2, "score": 0.8, "probabilities": POSITIVE},
    ]
}


def client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def answer(payload: Any) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    return {
        "Body": StreamingBody(io.BytesIO(raw), len(raw)),
        "ContentType": "application/json",
        "InvokedProductionVariant": "champion",
    }


class Scorer:
    def __init__(self, attempts: int = 3) -> None:
        self.client = client("sagemaker-runtime")
        self.stubber = Stubber(self.client)
        self.sleeps: list[float] = []
        self.scorer = SageMakerRuntimeScorer(
            self.client,
            ENDPOINT,
            attempts=attempts,
            backoff_s=0.5,
            backoff_max_s=1.5,
            sleep=self.sleeps.append,
            jitter=lambda: 1.0,
        )

    def fail(self, code: str, status: int, **fields: Any) -> None:
        self.stubber.add_client_error(
            "invoke_endpoint", code, "message from AWS", status, modeled_fields=fields or None
        )


def expected_request(batch_id: str = "fanin-1") -> dict[str, Any]:
    return {
        "EndpointName": ENDPOINT,
        "ContentType": "application/json",
        "Accept": "application/json",
        "InferenceId": batch_id,
        "Body": ANY,
    }


def test_one_call_per_batch_with_each_feedback_id_inside_and_the_batch_id_as_inference_id() -> None:
    s = Scorer()
    body = json.dumps({"instances": INSTANCES}).encode()
    s.stubber.add_response("invoke_endpoint", answer(PREDICTIONS), {**expected_request(), "Body": body})
    with s.stubber:
        out = s.scorer.score("fanin-1", INSTANCES)
    assert [(p.label, p.score, p.variant) for p in out] == [
        ("negative", 0.9, "champion"),
        ("positive", 0.8, "champion"),
    ]
    assert out[0].probabilities == {"negative": 0.9, "neutral": 0.06, "positive": 0.04}


@pytest.mark.parametrize(
    ("code", "status", "fields"),
    [
        ("ThrottlingException", 400, {}),
        ("ServiceUnavailable", 503, {}),
        ("InternalFailure", 500, {}),
        ("ModelNotReadyException", 429, {}),
        ("ModelError", 424, {"OriginalStatusCode": 503, "OriginalMessage": "worker busy"}),
        ("ModelError", 424, {"OriginalStatusCode": 429, "OriginalMessage": "too many requests"}),
    ],
)
def test_transient_errors_are_retried_with_exponential_backoff(code: str, status: int, fields: Any) -> None:
    s = Scorer(attempts=4)
    for _ in range(3):
        s.fail(code, status, **fields)
    s.stubber.add_response("invoke_endpoint", answer(PREDICTIONS), expected_request())
    with s.stubber:
        assert len(s.scorer.score("fanin-1", INSTANCES)) == 2
    assert s.sleeps == [0.5, 1.0, 1.5]  # 0.5 * 2^n, capped at 1.5 (jitter pinned to its maximum)
    s.stubber.assert_no_pending_responses()


def test_the_wait_is_full_jitter_below_the_cap() -> None:
    s = Scorer(attempts=2)
    s.scorer = SageMakerRuntimeScorer(
        s.client, ENDPOINT, attempts=2, backoff_s=0.5, sleep=s.sleeps.append, jitter=lambda: 0.25
    )
    s.fail("ThrottlingException", 400)
    s.stubber.add_response("invoke_endpoint", answer(PREDICTIONS), expected_request())
    with s.stubber:
        s.scorer.score("fanin-1", INSTANCES)
    assert s.sleeps == [0.125]


def test_still_failing_after_every_attempt_is_dependency_unavailable() -> None:
    s = Scorer(attempts=3)
    for _ in range(3):
        s.fail("ThrottlingException", 400)
    with s.stubber, pytest.raises(DependencyUnavailableError, match="ThrottlingException after 3 attempts"):
        s.scorer.score("fanin-1", INSTANCES)
    assert len(s.sleeps) == 2


@pytest.mark.parametrize(
    ("code", "status", "fields"),
    [
        ("ValidationError", 400, {}),  # a malformed request (a missing endpoint: the test below)
        ("AccessDeniedException", 400, {}),  # a ModelError for a 4xx: tests/unit/test_model_rejection.py
    ],
)
def test_other_errors_are_not_retried_and_reach_the_caller(code: str, status: int, fields: Any) -> None:
    s = Scorer()
    s.fail(code, status, **fields)
    with s.stubber, pytest.raises(ClientError) as raised:
        s.scorer.score("fanin-1", INSTANCES)
    assert raised.value.response["Error"]["Code"] == code
    assert s.sleeps == []


def test_a_missing_endpoint_is_not_found_not_retried() -> None:
    """The fan-in then fails those records (DLQ with the error, replayed later) instead of the whole batch."""
    s = Scorer()
    missing = f"Endpoint {ENDPOINT} of account 123456789012 not found."
    s.stubber.add_client_error("invoke_endpoint", "ValidationError", missing, 400)
    with s.stubber, pytest.raises(ResourceNotFoundError, match="not found"):
        s.scorer.score("fanin-1", INSTANCES)
    assert s.sleeps == []


def test_an_answer_of_the_wrong_length_is_an_error_not_a_guess() -> None:
    s = Scorer()
    s.stubber.add_response(
        "invoke_endpoint", answer({"predictions": PREDICTIONS["predictions"][:1]}), expected_request()
    )
    with s.stubber, pytest.raises(UnexpectedPredictionsError, match="1 predictions for 2 instances"):
        s.scorer.score("fanin-1", INSTANCES)


def test_the_batch_id_obeys_botocores_inference_id_shape() -> None:
    shape = botocore.session.get_session().get_service_model("sagemaker-runtime").shape_for("InferenceId")
    assert (shape.metadata["min"], shape.metadata["max"]) == (1, 64)
    assert shape.metadata["pattern"] == "\\A\\S[\\p{Print}]*\\z"
    assert INFERENCE_ID.match("x" * 64) and not INFERENCE_ID.match("x" * 65)
    assert not INFERENCE_ID.match(" leading-space") and not INFERENCE_ID.match("")
    with pytest.raises(ValueError, match="not a valid InferenceId"):
        Scorer().scorer.score("x" * 65, INSTANCES)


# -- SQS and SNS -------------------------------------------------------------------------------------


def test_a_missing_queue_is_not_found_throttling_retryable_and_denial_raised() -> None:
    sqs = client("sqs")
    with Stubber(sqs) as stubber:
        stubber.add_client_error(
            "get_queue_url",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
            400,
        )
        with pytest.raises(ResourceNotFoundError):
            SqsQueue(sqs, "reviewsense-prod-feedback").send({"channel": "chat"})
        stubber.add_response("get_queue_url", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q"})
        stubber.add_client_error("send_message", "RequestThrottled", "Rate exceeded", 400)
        stubber.add_client_error(
            "send_message", "AccessDenied", "not authorized to perform: sqs:sendmessage", 403
        )
        queue = SqsQueue(sqs, "q")
        with pytest.raises(DependencyUnavailableError):
            queue.send({"channel": "chat"})
        with pytest.raises(ClientError) as raised:
            queue.send({"channel": "chat"})
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


def test_an_alert_is_published_with_its_attributes_and_errors_translated() -> None:
    sns = client("sns")
    topic = "arn:aws:sns:us-east-1:123456789012:reviewsense-prod-alerts"
    attributes = {"channel": {"DataType": "String", "StringValue": "chat"}}
    with Stubber(sns) as stubber:
        stubber.add_response(
            "publish",
            {"MessageId": "m-1"},
            {
                "TopicArn": topic,
                "Subject": "s",
                "Message": '{"kind": "single"}',
                "MessageAttributes": attributes,
            },
        )
        stubber.add_client_error("publish", "NotFound", "Topic does not exist", 404)
        stubber.add_client_error("publish", "Throttling", "Rate exceeded", 400)
        stubber.add_client_error(
            "publish", "AuthorizationError", "not authorized to perform: SNS:Publish", 403
        )
        alerts = SnsTopic(sns, topic)
        assert alerts.publish("s", {"kind": "single"}, attributes) == "m-1"
        with pytest.raises(ResourceNotFoundError):
            alerts.publish("s", {}, {})
        with pytest.raises(DependencyUnavailableError):
            alerts.publish("s", {}, {})
        with pytest.raises(ClientError):
            alerts.publish("s", {}, {})


# -- DynamoDB ----------------------------------------------------------------------------------------


def test_conditional_writes_report_losing_instead_of_raising() -> None:
    ddb = client("dynamodb")
    lost = ("ConditionalCheckFailedException", "The conditional request failed", 400)
    with Stubber(ddb) as stubber:
        stubber.add_client_error("put_item", *lost)
        stubber.add_client_error("update_item", *lost)
        stubber.add_client_error("update_item", *lost)
        store = FeedbackStore(ddb, "reviewsense-prod-feedback")
        assert store.put_prediction({"id": "a" * 32, "label": "negative"}) is False
        assert store.claim("a" * 32, "alert", "single") is False
        assert store.count_negatives("862", "2026-11-29T10:00:00Z", ["a" * 32], 1) is None


def test_the_burst_counter_is_one_atomic_add_guarded_by_the_ids_already_counted() -> None:
    ddb = client("dynamodb")
    with Stubber(ddb) as stubber:
        stubber.add_response(
            "update_item",
            {"Attributes": {"count": {"N": "5"}, "members": {"SS": ["a", "b"]}}},
            {
                "TableName": "t",
                "Key": {"id": {"S": "burst#862#2026-11-29T10:00:00Z"}},
                "UpdateExpression": "ADD #count :n, #members :ids SET #exp = :exp",
                "ConditionExpression": "attribute_not_exists(#members) OR "
                "(NOT contains(#members, :f0) AND NOT contains(#members, :f1))",
                "ExpressionAttributeNames": {"#count": "count", "#members": "members", "#exp": "expires_at"},
                "ExpressionAttributeValues": {
                    ":n": {"N": "2"},
                    ":ids": {"SS": ["a", "b"]},
                    ":exp": {"N": "99"},
                    ":f0": {"S": "a"},
                    ":f1": {"S": "b"},
                },
                "ReturnValues": "UPDATED_NEW",
            },
        )
        assert FeedbackStore(ddb, "t").count_negatives("862", "2026-11-29T10:00:00Z", ["a", "b"], 99) == (
            3,
            5,
        )


def test_throttling_is_retryable_and_access_denied_is_raised() -> None:
    ddb = client("dynamodb")
    with Stubber(ddb) as stubber:
        stubber.add_client_error(
            "batch_get_item", "ProvisionedThroughputExceededException", "Rate exceeded", 400
        )
        stubber.add_client_error(
            "put_item", "AccessDeniedException", "not authorized to perform: dynamodb:PutItem", 400
        )
        store = FeedbackStore(ddb, "t")
        with pytest.raises(DependencyUnavailableError):
            store.get_many(["a"])
        with pytest.raises(ClientError) as raised:
            store.put_prediction({"id": "a"})
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"


def test_unprocessed_keys_are_read_again() -> None:
    ddb = client("dynamodb")
    keys = {"t": {"Keys": [{"id": {"S": "b"}}], "ConsistentRead": True}}
    with Stubber(ddb) as stubber:
        stubber.add_response(
            "batch_get_item", {"Responses": {"t": [{"id": {"S": "a"}}]}, "UnprocessedKeys": keys}
        )
        stubber.add_response(
            "batch_get_item", {"Responses": {"t": [{"id": {"S": "b"}}]}}, {"RequestItems": keys}
        )
        assert sorted(FeedbackStore(ddb, "t").get_many(["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize(
    "value",
    [None, True, 3, 0.25, "text", {"negative": 0.9, "n": {"x": [1, "y"]}}],
)
def test_values_survive_the_round_trip(value: Any) -> None:
    assert from_attribute(to_attribute(value)) == value
