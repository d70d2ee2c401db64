"""The one message shape on the feedback queue, shared by every entry point and the fan-in.

Every feedback message is a JSON object, UTF-8, in one of two forms:

- inline (``POST /feedback``, upstream systems sending to the queue directly)::

      {"channel": "chat", "body": <the channel's payload>, "message_id": "crm-123",
       "received_at": "2026-11-29T10:00:00+00:00"}

  ``body`` is the channel payload as a string (an RFC 822 e-mail, a call transcript) or as JSON (a
  chat transcript, an app review); ``body_base64`` replaces it for bytes that are not UTF-8 (a raw
  ``.eml`` in another charset). ``message_id`` (optional, at most 256 characters) is the sender's id
  of the item: resending with the same id gives the same feedback ids, so it is scored once. Without
  it the SQS message id is the source, and every send is new feedback. ``received_at`` (optional,
  ISO 8601 UTC) defaults to when SQS received the message.
- pointer (a file dropped under ``raw/feedback/<channel>/`` in the lake bucket)::

      {"channel": "email", "s3": {"bucket": "...", "key": "raw/feedback/email/x.eml", "etag": "..."},
       "received_at": "..."}

  The fan-in reads the object; its source is ``s3://bucket/key#etag``, so a redelivered upload
  event gives the same feedback ids and a re-upload with new content new ones.

The channel is validated by the parser (``chalicelib.domain.feedback``), not here, so an unknown
channel is quarantined with the parser's reason like any other bad input. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE_ID_CHARS = 256


class EnvelopeError(ValueError):
    """The message is not a feedback envelope; ``detail`` never quotes the input."""


@dataclass(frozen=True)
class S3Pointer:
    bucket: str
    key: str
    etag: str = ""

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f"#{self.etag}" if self.etag else "")


@dataclass(frozen=True)
class Envelope:
    channel: str
    body: bytes | None  # inline payload; None for a pointer
    pointer: S3Pointer | None
    message_id: str | None
    received_at: str | None

    def source(self, queue_message_id: str) -> str:
        if self.pointer is not None:
            return self.pointer.source
        return f"msg:{self.message_id}" if self.message_id else f"sqs:{queue_message_id}"


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def check_received_at(value: object) -> str:
    """An ISO 8601 timestamp with a UTC offset, normalised to ``+00:00``."""
    if not isinstance(value, str):
        raise EnvelopeError("received_at must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EnvelopeError("received_at is not ISO 8601") from exc
    if moment.utcoffset() is None:
        raise EnvelopeError("received_at has no UTC offset")
    return utc_iso(moment)


def payload_bytes(body: object) -> bytes:
    """A channel payload as the parser reads it: a string as UTF-8, anything else as compact JSON."""
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_envelope(raw: str | bytes | Mapping[str, Any]) -> Envelope:
    """Read one queue message (or a ``POST /feedback`` body); ``EnvelopeError`` says what is wrong."""
    if isinstance(raw, Mapping):
        data: Any = raw
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError("message is not JSON") from exc
    if not isinstance(data, Mapping):
        raise EnvelopeError("message must be a JSON object")
    channel = data.get("channel")
    if not isinstance(channel, str) or not channel.strip():
        raise EnvelopeError("channel is missing")
    message_id = data.get("message_id")
    if message_id is not None and (
        not isinstance(message_id, str) or not message_id.strip() or len(message_id) > MAX_MESSAGE_ID_CHARS
    ):
        raise EnvelopeError(
            f"message_id must be a non-empty string of at most {MAX_MESSAGE_ID_CHARS} characters"
        )
    received_at = check_received_at(data["received_at"]) if data.get("received_at") is not None else None
    body, pointer = _payload(data)
    return Envelope(channel.strip().lower(), body, pointer, message_id, received_at)


def _payload(data: Mapping[str, Any]) -> tuple[bytes | None, S3Pointer | None]:
    """(inline body, pointer): exactly one of ``body``, ``body_base64`` and ``s3`` is given."""
    forms = [k for k in ("body", "body_base64", "s3") if k in data]
    if len(forms) != 1:
        raise EnvelopeError("message needs exactly one of body, body_base64 or s3")
    (form,) = forms
    if form == "s3":
        return None, _pointer(data["s3"])
    if form == "body":
        if data["body"] is None:
            raise EnvelopeError("body is null")
        return payload_bytes(data["body"]), None
    if not isinstance(data["body_base64"], str):
        raise EnvelopeError("body_base64 must be a string")
    try:
        return base64.b64decode(data["body_base64"], validate=True), None
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("body_base64 is not base64") from exc


def _pointer(value: object) -> S3Pointer:
    if not isinstance(value, Mapping):
        raise EnvelopeError("s3 must be an object with bucket and key")
    bucket, key, etag = value.get("bucket"), value.get("key"), value.get("etag", "")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise EnvelopeError("s3 needs a bucket and a key")
    if not isinstance(etag, str):
        raise EnvelopeError("s3 etag must be a string")
    return S3Pointer(bucket, key, etag.strip('"'))


def inline_message(
    channel: str, body: object, *, message_id: str | None = None, received_at: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"channel": channel, "body": body}
    if message_id is not None:
        out["message_id"] = message_id
    if received_at is not None:
        out["received_at"] = received_at
    return out


def pointer_message(channel: str, pointer: S3Pointer, received_at: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "channel": channel,
        "s3": {"bucket": pointer.bucket, "key": pointer.key, "etag": pointer.etag},
    }
    if received_at is not None:
        out["received_at"] = received_at
    return out


def channel_of_feedback_key(key: str, feedback_prefix: str) -> str:
    """``raw/feedback/email/2026/x.eml`` -> ``email``; a file directly under the prefix -> ``""``."""
    rest = key[len(feedback_prefix) :] if key.startswith(feedback_prefix) else key
    parts = rest.split("/")
    return parts[0].lower() if len(parts) >= 2 else ""


@dataclass(frozen=True)
class QueueMessage:
    """One SQS record as the fan-in needs it (``chalicelib.events.queue_messages`` builds it)."""

    message_id: str
    body: str
    #: When SQS received the message (its ``SentTimestamp``), ISO 8601 UTC; stable across redeliveries.
    sent_at: str
    receive_count: int = 1
