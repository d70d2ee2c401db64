"""What the quarantine zone holds: the reasons a record is rejected and the rejected record itself.

Every reader of an uploaded object (the bounded reader, the format readers, the mapping onto the canonical
schema in ``chalicelib.domain.reviews``) reports a bad record by raising ``RecordError`` with one
``QuarantineReason``; the parser turns it into a ``QuarantinedRecord``. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class QuarantineReason(StrEnum):
    """Why a record (or a whole object) was kept out of the curated zone."""

    BAD_ENCODING = "bad_encoding"
    MISSING_TEXT = "missing_text"
    MISSING_REQUIRED_COLUMNS = "missing_required_columns"
    RATING_OUT_OF_RANGE = "rating_out_of_range"
    INVALID_VALUE = "invalid_value"
    OVERSIZED_FIELD = "oversized_field"
    UNPARSABLE_LINE = "unparsable_line"
    UNREADABLE_FILE = "unreadable_file"
    UNSUPPORTED_FORMAT = "unsupported_format"
    #: The object's decompressed size exceeds the ingest limit (quarantined whole, never parsed).
    OBJECT_TOO_LARGE = "object_too_large"


class RecordError(Exception):
    """A record (or the whole object) cannot be curated, for ``reason``."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class QuarantinedRecord:
    """One rejected record (``record_number`` 0 means the whole object)."""

    source_key: str
    channel: str
    record_number: int
    reason: QuarantineReason
    detail: str
    raw_record: str
    quarantined_at: datetime

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["reason"] = self.reason.value
        return row


def printable(value: str) -> str:
    """A raw record as valid UTF-8 text for the quarantine table (bad bytes shown as ``\\xNN``)."""
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
