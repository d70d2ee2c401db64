"""Feedback from every channel as one canonical record: ``parse_feedback``, the one entry point.

Feedback reaches the fan-in Lambda from six channels in six shapes; everything after the fan-in
(scoring, storage, alerts, human review) sees only ``FeedbackRecord``. ``parse_feedback`` takes the
bytes of one S3 object or queue message and returns every item either as a record or as a
``RejectedFeedback`` with a machine-readable reason, never an exception: input items = records +
rejected. PII never leaves the parsers in clear: text and title are masked (``pii.mask_pii``), the
customer identifier is kept only as a salted hash, and rejection details never quote input values.

Import every feedback name from here; the work is split by concern into sibling modules:

- ``feedback_record``: the record and rejection types, ``feedback_id_for`` and ``customer_ref_for``
  (how ids and customer references are made), and what the channel parsers share;
- ``feedback_email``: RFC 822 messages, ``strip_quotes_and_signature``, ``html_to_text``;
- ``feedback_transcripts``: chat and call-centre transcripts;
- ``feedback_json`` and ``feedback_posts``: JSON object-or-array bodies, app reviews and social posts;
- ``feedback_reviews``: product-review files through the lake's ``ReviewParser``
  (``record_for_review``, ``rejection_for_review``).

Decisions that hold for every channel (each module's docstring states its own):

- A body over ``max_bytes`` is rejected as ``too_large`` before any parsing; an empty (blank) body,
  an empty JSON array or a review file with a header and no rows is ``empty_body``. A body that holds
  several items and is rejected whole counts as one item, so every body yields at least one entry.
- Encoding: chat, call, app and social bodies must be UTF-8 (a BOM is allowed); anything else is
  ``not_utf8``, never guessed (e-mail parts follow their declared charset). A JSON ``\\ud800`` escape
  of a lone surrogate (which no later UTF-8 writer could encode) makes its item ``not_utf8``.
- Bodies that crash the standard library (JSON or MIME nested past the recursion limit; damaged
  headers on which the stdlib header parser raises instead of recording a defect) are ``bad_json`` /
  ``broken_mime`` (``unparsable`` for review files), never an exception.
- A product id that holds personal data is dropped, not stored.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from chalicelib.domain.feedback_email import html_to_text, parse_email, strip_quotes_and_signature
from chalicelib.domain.feedback_posts import parse_app, parse_social
from chalicelib.domain.feedback_record import (
    DEFAULT_MAX_BYTES,
    Channel,
    FeedbackParse,
    FeedbackRecord,
    FeedbackRejection,
    ItemRejectedError,
    ItemResult,
    RejectedFeedback,
    customer_ref_for,
    feedback_id_for,
    normalise_identifier,
    safe_product_id,
)
from chalicelib.domain.feedback_reviews import parse_reviews, record_for_review, rejection_for_review
from chalicelib.domain.feedback_transcripts import parse_call, parse_chat
from chalicelib.domain.pii import mask_pii

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Channel",
    "FeedbackParse",
    "FeedbackRecord",
    "FeedbackRejection",
    "RejectedFeedback",
    "customer_ref_for",
    "feedback_id_for",
    "html_to_text",
    "normalise_identifier",
    "parse_feedback",
    "record_for_review",
    "rejection_for_review",
    "strip_quotes_and_signature",
]

_PARSERS: dict[Channel, Callable[[bytes], Iterator[ItemResult]]] = {
    Channel.EMAIL: parse_email,
    Channel.CHAT: parse_chat,
    Channel.CALL: parse_call,
    Channel.APP: parse_app,
    Channel.SOCIAL: parse_social,
}


def parse_feedback(
    channel: str,
    body: bytes,
    *,
    source: str,
    received_at: str,
    salt: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FeedbackParse:
    """Parse the bytes of one object or message of ``channel`` into records and rejections.

    Malformed input never raises. ``ValueError`` is raised only for a caller error: an empty salt or
    a ``received_at`` that is not an ISO 8601 UTC timestamp.
    """
    if not salt:
        raise ValueError("customer references need a non-empty salt")
    _check_received_at(received_at)
    parsed = _parse(channel, body, source=source, received_at=received_at, salt=salt, max_bytes=max_bytes)
    # The source (a sender's message id, an upload's key) is stored, logged and alerted with the record:
    # mask it too. Feedback ids were derived from the original, so a redelivery still gets the same id.
    shown = mask_pii(source)
    if shown == source:
        return parsed
    return FeedbackParse(
        records=[dataclasses.replace(r, source=shown) for r in parsed.records],
        rejected=[dataclasses.replace(r, source=shown) for r in parsed.rejected],
    )


def _parse(
    channel: str, body: bytes, *, source: str, received_at: str, salt: str, max_bytes: int
) -> FeedbackParse:
    result = FeedbackParse()

    def reject(reason: FeedbackRejection, detail: str) -> FeedbackParse:
        result.rejected.append(RejectedFeedback(source, channel, reason, mask_pii(detail)))
        return result

    try:
        known = Channel(channel)
    except ValueError:
        return reject(
            FeedbackRejection.UNKNOWN_CHANNEL,
            f"channel is not one of {', '.join(c.value for c in Channel)}",
        )
    if len(body) > max_bytes:
        return reject(FeedbackRejection.TOO_LARGE, f"body has {len(body)} bytes (limit {max_bytes})")
    if not body.strip():
        return reject(FeedbackRejection.EMPTY_BODY, "body is empty")
    if known is Channel.REVIEW:
        return parse_reviews(body, source=source, received_at=received_at, max_bytes=max_bytes)
    try:
        items = list(_PARSERS[known](body))
    except ItemRejectedError as whole:
        return reject(whole.reason, whole.detail)
    for item in items:
        if isinstance(item, ItemRejectedError):
            reject(item.reason, item.detail)
            continue
        result.records.append(
            FeedbackRecord(
                feedback_id=feedback_id_for(known.value, source, item.item_key),
                channel=known.value,
                received_at=received_at,
                customer_ref=customer_ref_for(item.customer, salt),
                product_id=safe_product_id(item.product_id),
                text=mask_pii(item.text),
                title=None if item.title is None else mask_pii(item.title),
                rating=item.rating,
                source=source,
            )
        )
    return result


def _check_received_at(received_at: str) -> None:
    try:
        moment = datetime.fromisoformat(received_at)
    except ValueError as exc:
        raise ValueError(f"received_at is not ISO 8601: {received_at!r}") from exc
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"received_at must be a UTC timestamp: {received_at!r}")
