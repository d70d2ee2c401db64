"""The feedback queue's one message shape, and the SQS event it arrives in."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib import events
from chalicelib.domain.envelope import (
    EnvelopeError,
    S3Pointer,
    channel_of_feedback_key,
    parse_envelope,
    pointer_message,
)


def test_an_inline_string_body_is_read_as_utf8_and_an_object_as_json() -> None:
    text = parse_envelope(json.dumps({"channel": "Call", "body": "Customer: the zip broke — twice"}))
    assert (text.channel, text.body) == ("call", "Customer: the zip broke — twice".encode())
    obj = parse_envelope({"channel": "app", "body": {"review_id": "r", "body": "é"}})
    assert json.loads(obj.body or b"") == {"review_id": "r", "body": "é"}
    assert obj.source("sqs-1") == "sqs:sqs-1"


def test_bytes_that_are_not_utf8_travel_as_base64() -> None:
    raw = "Subject: caf\xe9\r\n\r\nbody".encode("latin-1")
    envelope = parse_envelope({"channel": "email", "body_base64": base64.b64encode(raw).decode()})
    assert envelope.body == raw


def test_the_senders_message_id_is_the_source_so_a_resend_is_the_same_feedback() -> None:
    envelope = parse_envelope({"channel": "chat", "body": "x", "message_id": "crm-42"})
    assert envelope.source("sqs-1") == envelope.source("sqs-2") == "msg:crm-42"


def test_received_at_is_normalised_to_utc() -> None:
    envelope = parse_envelope({"channel": "chat", "body": "x", "received_at": "2026-11-29T12:00:00+02:00"})
    assert envelope.received_at == "2026-11-29T10:00:00+00:00"


def test_a_pointer_names_the_object_and_its_version() -> None:
    message = pointer_message("email", S3Pointer("lake", "raw/feedback/email/a.eml", "abc"))
    envelope = parse_envelope(json.dumps(message))
    assert envelope.body is None and envelope.pointer == S3Pointer("lake", "raw/feedback/email/a.eml", "abc")
    assert envelope.source("sqs-1") == "s3://lake/raw/feedback/email/a.eml#abc"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ({"body": "x"}, "channel is missing"),
        ({"channel": "chat"}, "exactly one of"),
        ({"channel": "chat", "body": "x", "s3": {"bucket": "b", "key": "k"}}, "exactly one of"),
        ({"channel": "chat", "body": None}, "body is null"),
        ({"channel": "chat", "body_base64": "%%%"}, "not base64"),
        ({"channel": "chat", "s3": {"bucket": "b"}}, "bucket and a key"),
        ({"channel": "chat", "body": "x", "message_id": ""}, "message_id"),
        ({"channel": "chat", "body": "x", "message_id": "m" * 257}, "message_id"),
        ({"channel": "chat", "body": "x", "received_at": "yesterday"}, "not ISO 8601"),
        ({"channel": "chat", "body": "x", "received_at": "2026-11-29T10:00:00"}, "no UTC offset"),
    ],
)
def test_what_is_not_an_envelope_says_why(raw: Any, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        parse_envelope(raw if isinstance(raw, str) else json.dumps(raw))


def test_the_channel_of_a_feedback_file_is_its_first_folder() -> None:
    assert channel_of_feedback_key("raw/feedback/Email/2026/a.eml", "raw/feedback/") == "email"
    assert channel_of_feedback_key("raw/feedback/a.eml", "raw/feedback/") == ""


def test_an_sqs_event_becomes_queue_messages() -> None:
    event = {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "h",
                "body": '{"channel": "chat"}',
                "attributes": {"SentTimestamp": "1795939200000", "ApproximateReceiveCount": "3"},
            }
        ]
    }
    (message,) = events.queue_messages(event)
    assert (message.message_id, message.body, message.receive_count) == ("m-1", '{"channel": "chat"}', 3)
    assert message.sent_at == "2026-11-29T08:00:00+00:00"
    with pytest.raises(events.InvalidEventError):
        events.queue_messages({"detail": {}})
