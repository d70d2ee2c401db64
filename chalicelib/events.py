"""Raw Lambda event dicts -> typed inputs for the services.

Kept separate from the handlers so each event shape (EventBridge S3 notifications, the fan-in's SQS
batches; SageMaker state changes later) is parsed, validated and tested in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.envelope import QueueMessage, utc_iso
from chalicelib.domain.lake import SourceObject
from chalicelib.errors import TerminalError


class InvalidEventError(TerminalError):
    """The event does not have the shape its source documents."""


def source_object_from_eventbridge(event: Mapping[str, Any]) -> SourceObject:
    """An S3 "Object Created" event delivered by EventBridge."""
    detail = event.get("detail") or {}
    try:
        bucket = str(detail["bucket"]["name"])
        obj = detail["object"]
        key = str(obj["key"])
    except (KeyError, TypeError) as exc:
        raise InvalidEventError(f"not an S3 Object Created event: missing {exc}") from exc
    size = obj.get("size")
    return SourceObject(
        bucket=bucket,
        key=key,
        etag=str(obj.get("etag") or obj.get("eTag") or ""),
        version_id=obj.get("version-id") or None,
        size=int(size) if size is not None else None,
    )


def queue_messages(event: Mapping[str, Any]) -> list[QueueMessage]:
    """The records of a Lambda SQS event (``Records[*]``: messageId, body, attributes)."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("not an SQS event: no Records")
    out = []
    for record in records:
        try:
            message_id = str(record["messageId"])
            body = str(record["body"])
        except (KeyError, TypeError) as exc:
            raise InvalidEventError(f"not an SQS record: missing {exc}") from exc
        attributes = record.get("attributes") or {}
        sent_ms = attributes.get("SentTimestamp")
        sent_at = utc_iso(datetime.fromtimestamp(int(sent_ms) / 1000, tz=UTC)) if sent_ms else ""
        out.append(QueueMessage(message_id, body, sent_at, int(attributes.get("ApproximateReceiveCount", 1))))
    return out
