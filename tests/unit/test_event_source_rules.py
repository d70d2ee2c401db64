"""The rules the local SQS poller and API Gateway follow, without a server: Lambda's SQS record,
its partial-batch-response rules, and API Gateway's SigV4 checks with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from reviewsense.localcloud.apigateway import GatewayError, verify_sigv4
from reviewsense.localcloud.sqspoller import failed_items, sqs_event

URL = "http://127.0.0.1:4566/_api/local/feedback?b=2&a=1"
SIGNED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_the_record_is_lambdas_sqs_record() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Body": "hello",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
        "MessageAttributes": {
            "n": {"DataType": "Number", "StringValue": "3"},
            "raw": {"DataType": "Binary", "BinaryValue": b"hi"},
        },
        "MD5OfMessageAttributes": "abc",
    }
    event = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert event == {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "rh",
                "body": "hello",
                "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
                "messageAttributes": {
                    "n": {
                        "stringValue": "3",
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "Number",
                    },
                    "raw": {
                        "binaryValue": "aGk=",
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "Binary",
                    },
                },
                "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
                "md5OfMessageAttributes": "abc",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
        ]
    }


@pytest.mark.parametrize(
    ("response", "kept"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}, {"a", "c"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),  # empty identifier: whole batch fails
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"id": "a"}]}, None),  # a bad key name
        ({"batchItemFailures": [{"itemIdentifier": "zz"}]}, None),  # not in the batch
        ({"batchItemFailures": "a"}, None),
        ("not an object", None),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(response: Any, kept: set[str] | None) -> None:
    assert failed_items(response, ["a", "b", "c"]) == kept


def sign(body: bytes, key: str = "testing", secret: str = "testing", region: str = "us-east-1") -> AWSRequest:
    request = AWSRequest(method="POST", url=URL, data=body, headers={"Content-Type": "application/json"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT.replace(tzinfo=None)):
        SigV4Auth(Credentials(key, secret), "execute-api", region).add_auth(request)
    request.headers["Host"] = "127.0.0.1:4566"
    return request


def check(request: AWSRequest, body: bytes, now: datetime = SIGNED_AT) -> Any:
    return verify_sigv4(
        "POST",
        URL,
        list(request.headers.items()),
        body,
        region="us-east-1",
        account_id="123456789012",
        now=now,
    )


def refusal(request: AWSRequest, body: bytes, now: datetime = SIGNED_AT) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        check(request, body, now)
    assert caught.value.status == 403
    return caught.value


def test_a_correct_signature_names_the_caller() -> None:
    caller = check(sign(b'{"a": 1}'), b'{"a": 1}', now=SIGNED_AT + timedelta(minutes=4))
    assert (caller.access_key, caller.account_id) == ("testing", "123456789012")


def test_a_changed_body_or_secret_does_not_verify() -> None:
    assert refusal(sign(b'{"a": 1}'), b'{"a": 2}').error_type == "InvalidSignatureException"
    assert refusal(sign(b"{}", secret="other"), b"{}").error_type == "InvalidSignatureException"


def test_signatures_older_or_newer_than_five_minutes_are_refused() -> None:
    old = refusal(sign(b"{}"), b"{}", now=SIGNED_AT + timedelta(minutes=5, seconds=1))
    assert old.message.startswith("Signature expired: 20260301T120000Z is now earlier than")
    early = refusal(sign(b"{}"), b"{}", now=SIGNED_AT - timedelta(minutes=5, seconds=1))
    assert early.message.startswith("Signature not yet current")


def test_missing_unknown_and_misscoped_credentials_are_refused() -> None:
    bare = AWSRequest(method="POST", url=URL, data=b"{}")
    assert refusal(bare, b"{}").message == "Missing Authentication Token"
    unknown = refusal(sign(b"{}", key="AKIANOBODY0000000000"), b"{}")
    assert unknown.error_type == "UnrecognizedClientException"
    assert refusal(sign(b"{}", region="eu-west-1"), b"{}").error_type == "InvalidSignatureException"
    garbled = sign(b"{}")
    garbled.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=testing")
    assert refusal(garbled, b"{}").error_type == "IncompleteSignatureException"


class ScriptedSqs:
    """Answers ReceiveMessage from a script (one list of messages per call, then nothing)."""

    def __init__(self, answers: list[list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Messages": self.answers.pop(0) if self.answers else []}


def test_a_batching_window_fills_the_batch_and_delivers_a_message_received_twice_once() -> None:
    import threading

    from reviewsense.localcloud.runtime import LocalLambdaRuntime
    from reviewsense.localcloud.sqspoller import SqsMapping, SqsPoller

    def msg(mid: str, handle: str) -> dict[str, Any]:
        return {"MessageId": mid, "ReceiptHandle": handle, "Body": mid, "MD5OfBody": ""}

    sqs = ScriptedSqs([[msg("a", "a1")], [msg("b", "b1"), msg("a", "a2")], [msg("c", "c1")]])
    mapping = SqsMapping(
        "u", "arn:aws:lambda:us-east-1:1:function:f", "arn:aws:sqs:us-east-1:1:q", 3, 5.0, False
    )
    poller = SqsPoller("us-east-1", LocalLambdaRuntime(), lambda service: sqs)
    batch = poller._receive_batch(sqs, "url", mapping, threading.Event())
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in batch] == [("a", "a2"), ("b", "b1"), ("c", "c1")]
    assert [c["MaxNumberOfMessages"] for c in sqs.calls] == [3, 2, 1]  # stops once BatchSize is reached
    assert all(c["MessageSystemAttributeNames"] == ["All"] for c in sqs.calls)
