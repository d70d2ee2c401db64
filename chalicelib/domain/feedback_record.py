"""The canonical feedback record and the pieces every channel parser shares.

``feedback`` (the ``parse_feedback`` dispatcher) and each channel module (``feedback_email``,
``feedback_transcripts``, ``feedback_posts``, ``feedback_reviews``) import from here, never from each
other's public entry point, so there is no import cycle. Users import these names from ``feedback``,
which re-exports them.

- ``feedback_id`` is the first 32 hex characters of sha256 over channel, source and the item's own id
  (or its 1-based position when it has none), so a redelivered message gets the same id.
- ``customer_ref`` is sha256 over the salt and the normalised identifier (case-folded; an e-mail
  address is its address part; a phone number keeps ``+`` and digits; a handle loses its ``@``).
- A channel parser yields a ``ParsedItem`` per item (before ids, hashing and masking) or an
  ``ItemRejectedError`` for an item it keeps out; it raises ``ItemRejectedError`` when it rejects the
  body whole.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.domain.pii import mask_pii


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    CALL = "call"
    APP = "app"
    SOCIAL = "social"
    REVIEW = "review"


class FeedbackRejection(StrEnum):
    """Why an item (or a whole body) did not become a ``FeedbackRecord``."""

    EMPTY_BODY = "empty_body"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_CHARSET = "bad_charset"
    BROKEN_MIME = "broken_mime"
    BAD_JSON = "bad_json"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    EMPTY_TEXT = "empty_text"
    INVALID_VALUE = "invalid_value"
    NO_CUSTOMER_TEXT = "no_customer_text"
    UNLABELLED_TRANSCRIPT = "unlabelled_transcript"
    UNKNOWN_CHANNEL = "unknown_channel"
    UNPARSABLE = "unparsable"
    UNSUPPORTED_FORMAT = "unsupported_format"


@dataclass(frozen=True)
class FeedbackRecord:
    """One piece of customer feedback in the canonical shape every later step sees."""

    feedback_id: str
    channel: str
    received_at: str
    customer_ref: str | None
    product_id: str | None
    text: str
    title: str | None
    rating: int | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackRecord:
        """The inverse of ``to_dict``; ``ValueError`` on a missing field or a value of the wrong type."""

        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise ValueError(f"feedback record field {name} must be a string")
            return value

        def optional_text(name: str) -> str | None:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"feedback record field {name} must be a string or null")
            return value

        rating = data.get("rating")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)):
            raise ValueError("feedback record field rating must be an integer or null")
        return cls(
            feedback_id=text("feedback_id"),
            channel=text("channel"),
            received_at=text("received_at"),
            customer_ref=optional_text("customer_ref"),
            product_id=optional_text("product_id"),
            text=text("text"),
            title=optional_text("title"),
            rating=rating,
            source=text("source"),
        )


@dataclass(frozen=True)
class RejectedFeedback:
    """One item (or whole body) that was kept out, with a machine-readable reason and a PII-free detail."""

    source: str
    channel: str
    reason: FeedbackRejection
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "channel": self.channel,
            "reason": self.reason.value,
            "detail": self.detail,
        }


@dataclass
class FeedbackParse:
    """What one body produced: every input item is in exactly one of the two lists."""

    records: list[FeedbackRecord] = field(default_factory=list)
    rejected: list[RejectedFeedback] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.records) + len(self.rejected)


DEFAULT_MAX_BYTES = 256 * 1024


def feedback_id_for(channel: str, source: str, item_key: str) -> str:
    """Deterministic id: the same channel, source and item always give the same 32 hex characters."""
    digest = hashlib.sha256("\x1f".join((channel, source, item_key)).encode("utf-8"))
    return digest.hexdigest()[:32]


_PHONE_LIKE = re.compile(r"\+?[\d\s().-]{7,}")


def normalise_identifier(identifier: str) -> str:
    """The form of a customer identifier that is hashed: same person, same form."""
    value = identifier.strip()
    if "@" in value[1:] and not value.startswith("@"):
        return value.casefold()  # e-mail address
    if _PHONE_LIKE.fullmatch(value):
        return ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)
    return value.lstrip("@").casefold()


def customer_ref_for(identifier: str | None, salt: str) -> str | None:
    """Salted sha256 of the normalised identifier (64 hex characters); ``None`` without one."""
    if identifier is None or not identifier.strip():
        return None
    return hashlib.sha256(f"{salt}\x1f{normalise_identifier(identifier)}".encode()).hexdigest()


def safe_product_id(product_id: str | None) -> str | None:
    """An id field that holds personal data is dropped, not stored."""
    if product_id is None or mask_pii(product_id) != product_id:
        return None
    return product_id


@dataclass(frozen=True)
class ParsedItem:
    """What a channel parser extracted from one item, before ids, hashing and masking."""

    item_key: str
    customer: str | None
    product_id: str | None
    text: str
    title: str | None = None
    rating: int | None = None


class ItemRejectedError(Exception):
    """An item (yielded) or a whole body (raised) kept out, for ``reason``; ``detail`` quotes no input."""

    def __init__(self, reason: FeedbackRejection, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


ItemResult = ParsedItem | ItemRejectedError


def utf8_text(body: bytes) -> str:
    """The body as UTF-8 (a BOM is allowed); anything else rejects the body as ``not_utf8``."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ItemRejectedError(
            FeedbackRejection.NOT_UTF8, f"body is not valid UTF-8 (byte {exc.start})"
        ) from exc
