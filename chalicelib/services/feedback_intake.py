"""Feedback entry points other than the queue itself: ``POST /feedback`` and files under raw/feedback/.

Both put one envelope (``chalicelib.domain.envelope``) on the feedback queue and return at once; the
fan-in Lambda does the rest. The route checks what can be checked without parsing the payload (a JSON
object, a known channel, a non-empty body within the size limit, a valid ``message_id`` and
``received_at``) so a caller hears of a bad request as a 400 with the reason, not later in the
quarantine. A file uploaded under ``raw/feedback/<channel>/`` becomes one pointer message: the fan-in
reads the object, so its size is not bounded by the queue's message size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.config import Settings
from chalicelib.domain import lake
from chalicelib.domain.envelope import (
    EnvelopeError,
    S3Pointer,
    channel_of_feedback_key,
    parse_envelope,
    pointer_message,
)
from chalicelib.domain.feedback import Channel
from chalicelib.errors import TerminalError

#: SQS's message size limit that every queue accepts (256 KiB; AWS raised its own maximum later).
SQS_MAX_MESSAGE_BYTES = 256 * 1024
#: The envelope keys the route forwards; anything else is ignored.
INLINE_KEYS = ("channel", "body", "body_base64", "message_id", "received_at")


class InvalidFeedbackError(TerminalError):
    """A ``POST /feedback`` body that is not feedback the fan-in could take (the route answers 400)."""


class Queue(Protocol):
    def send(self, message: Mapping[str, Any], attributes: Mapping[str, str] | None = None) -> str: ...


class FeedbackIntake:
    def __init__(self, settings: Settings, queue: Queue) -> None:
        self._s = settings
        self._queue = queue

    def submit(self, body: object) -> dict[str, Any]:
        """Validate one posted envelope and enqueue it; returns the SQS message id."""
        if not isinstance(body, Mapping):
            raise InvalidFeedbackError("the request body must be a JSON object")
        if "s3" in body:
            where = f"{self._s.feedback_raw_prefix}<channel>/"
            raise InvalidFeedbackError(f"s3 pointers are not accepted here: upload the file under {where}")
        message = {k: body[k] for k in INLINE_KEYS if k in body}
        try:
            envelope = parse_envelope(message)
        except EnvelopeError as exc:
            raise InvalidFeedbackError(str(exc)) from exc
        channels = [c.value for c in Channel]
        if envelope.channel not in channels:
            raise InvalidFeedbackError(f"unknown channel: use one of {', '.join(channels)}")
        message["channel"] = envelope.channel
        payload = envelope.body or b""
        if not payload.strip():
            raise InvalidFeedbackError("body is empty")
        if len(payload) > self._s.max_message_bytes:
            raise InvalidFeedbackError(
                f"body has {len(payload)} bytes: the limit is {self._s.max_message_bytes}"
            )
        encoded = len(json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        if encoded > SQS_MAX_MESSAGE_BYTES:
            raise InvalidFeedbackError(
                f"the message would have {encoded} bytes: the queue takes at most {SQS_MAX_MESSAGE_BYTES}"
            )
        message_id = self._queue.send(message, {"channel": envelope.channel})
        return {"message_id": message_id, "channel": envelope.channel}

    def enqueue_upload(self, source: lake.SourceObject) -> dict[str, Any]:
        """A file under ``raw/feedback/<channel>/`` -> one pointer message (others: ``skipped``)."""
        key = lake.decode_event_key(source.key)
        if source.bucket != self._s.lake_bucket or not lake.is_raw_key(key, self._s.feedback_raw_prefix):
            return {"status": "skipped", "key": key, "reason": "not a feedback file of the lake bucket"}
        channel = channel_of_feedback_key(key, self._s.feedback_raw_prefix)
        # An unknown or missing channel is still sent: the fan-in quarantines it with the parser's reason.
        pointer = S3Pointer(source.bucket, key, source.etag)
        message_id = self._queue.send(
            pointer_message(channel or "unknown", pointer), {"channel": channel or "unknown"}
        )
        return {"status": "queued", "key": key, "channel": channel, "message_id": message_id}
