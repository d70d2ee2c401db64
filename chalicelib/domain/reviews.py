"""The canonical review schema and the parser that maps any upstream file onto it.

Upstream channels send CSV (plain or gzip), JSON and JSON Lines with their own column names. The parser
here turns the bytes of one uploaded object into canonical ``Review`` rows plus one ``QuarantinedRecord``
per bad record, each with a machine-readable reason. Nothing is lost: every input record ends up in exactly
one of the two lists (``ParseResult.total_records`` counts them). The steps live one module each:

- ``chalicelib.domain.bounded_read``: the bytes, streamed, gzip undone on the fly, the decompressed size
  bounded so a gzip bomb cannot exhaust memory, then decoded to text;
- ``chalicelib.domain.review_formats``: which format the object is, and its records by column name;
- this module: the schema (``Review``, ``COLUMN_ALIASES``, the rating -> sentiment rule applied through
  ``chalicelib.domain.labels``), the mapping of one record onto it, and ``ReviewParser``, which runs the
  steps;
- ``chalicelib.domain.quarantine``: the reasons and the rejected record.

The names importers use (``QuarantineReason``, ``QuarantinedRecord``, ``FileFormat``,
``normalise_column``) are re-exported here, so ``chalicelib.domain.reviews`` stays the one entry point.
Pure: no I/O, no clock, no environment.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.bounded_read import BoundedReader, ObjectTooLargeError, decode, head_text
from chalicelib.domain.labels import sentiment_from_rating
from chalicelib.domain.quarantine import QuarantinedRecord, QuarantineReason, RecordError, printable
from chalicelib.domain.review_formats import (
    FileFormat,
    RawRecord,
    detect_format,
    normalise_column,
    read_records,
)

__all__ = [
    "COLUMN_ALIASES",
    "REQUIRED_FIELDS",
    "FileFormat",
    "ParseLimits",
    "ParseResult",
    "QuarantineReason",
    "QuarantinedRecord",
    "Review",
    "ReviewParser",
    "normalise_column",
    "review_id_for",
]

#: Upstream column names (normalised by ``normalise_column``: lower case, non-alphanumerics as ``_``)
#: for each canonical field.
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "review_id": (
        "review_id",
        "id",
        "",
        "unnamed_0",
        "record_id",
        "feedback_id",
        "message_id",
        "chat_id",
        "call_id",
        "post_id",
    ),
    "product_id": ("product_id", "clothing_id", "item_id", "sku"),
    "division": ("division", "division_name"),
    "department": ("department", "department_name"),
    "product_class": ("product_class", "class_name", "class", "category"),
    "age": ("age", "customer_age"),
    "title": ("title", "subject", "summary"),
    "text": ("text", "review_text", "review", "body", "message", "comment", "content", "transcript"),
    "rating": ("rating", "stars", "score"),
    "recommended": ("recommended", "recommended_ind", "would_recommend"),
}

REQUIRED_FIELDS: tuple[str, ...] = ("text",)
_REQUIRED_COLUMNS = {name: COLUMN_ALIASES[name] for name in REQUIRED_FIELDS}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class Review:
    """One curated review in the canonical schema."""

    review_id: str
    channel: str
    product_id: str | None
    division: str | None
    department: str | None
    product_class: str | None
    age: int | None
    title: str | None
    text: str
    rating: int | None
    recommended: bool | None
    sentiment: int | None
    source_key: str
    record_number: int
    ingested_at: datetime

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParseLimits:
    max_field_chars: int = 20_000


@dataclass
class ParseResult:
    reviews: list[Review] = field(default_factory=list)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    file_format: FileFormat | None = None

    @property
    def total_records(self) -> int:
        return len(self.reviews) + len(self.quarantined)

    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantined:
            counts[q.reason.value] = counts.get(q.reason.value, 0) + 1
        return counts


class _ObjectRejectedError(Exception):
    """The whole object is quarantined (record 0); ``head`` is the start of what was read of it."""

    def __init__(self, error: RecordError, head: bytes | bytearray) -> None:
        super().__init__(error.detail)
        self.reason = error.reason
        self.detail = error.detail
        self.head = head


def review_id_for(channel: str, source_key: str, record_number: int, upstream_id: str | None) -> str:
    """Stable id: the channel's own id when it sends one, else one derived from the source position."""
    if upstream_id:
        return f"{channel}-{upstream_id}"
    digest = hashlib.sha1(source_key.encode("utf-8")).hexdigest()[:12]
    return f"{digest}-{record_number}"


class ReviewParser:
    """Turns the bytes of one uploaded object into reviews and quarantined records."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        self.limits = limits or ParseLimits()

    def parse(
        self,
        data: bytes,
        *,
        source_key: str,
        channel: str,
        ingested_at: datetime,
        max_bytes: int | None = None,
    ) -> ParseResult:
        """Parse one object held in memory (gzip undone here, within ``max_bytes`` when given)."""
        return self.parse_stream(
            (data,),
            source_key=source_key,
            channel=channel,
            ingested_at=ingested_at,
            max_bytes=sys.maxsize if max_bytes is None else max_bytes,
        )

    def parse_stream(
        self,
        chunks: Iterable[bytes],
        *,
        source_key: str,
        channel: str,
        ingested_at: datetime,
        max_bytes: int,
    ) -> ParseResult:
        """Parse one object read chunk by chunk; one over ``max_bytes`` decompressed is quarantined whole.

        Reading stops at the first byte past the limit, so memory stays bounded by the limit whatever
        the compression ratio, and the quarantine record says how many bytes were seen on each side.
        """
        result = ParseResult()
        try:
            data = _read_bounded(chunks, max_bytes)
            text = _decode_text(data)
            result.file_format = _file_format(source_key, text, data)
            try:
                records = read_records(
                    result.file_format,
                    text,
                    required=_REQUIRED_COLUMNS,
                    max_field_chars=self.limits.max_field_chars,
                )
            except RecordError as err:
                raise _ObjectRejectedError(err, data) from err
        except _ObjectRejectedError as err:
            result.quarantined.append(
                QuarantinedRecord(
                    source_key,
                    channel,
                    0,
                    err.reason,
                    err.detail,
                    printable(head_text(err.head)),
                    ingested_at,
                )
            )
            return result
        for record in records:
            self._add(result, record, source_key, channel, ingested_at)
        return result

    def _add(
        self, result: ParseResult, record: RawRecord, source_key: str, channel: str, ingested_at: datetime
    ) -> None:
        """Append the record to the reviews, or to the quarantined records with the reason it failed."""
        try:
            if record.error is not None:
                raise record.error
            assert record.fields is not None
            result.reviews.append(
                self._to_review(record.fields, source_key, channel, record.number, ingested_at)
            )
        except RecordError as err:
            result.quarantined.append(
                QuarantinedRecord(
                    source_key,
                    channel,
                    record.number,
                    err.reason,
                    err.detail,
                    printable(record.raw),
                    ingested_at,
                )
            )

    # -- mapping one record -----------------------------------------------------------------------

    def _to_review(
        self,
        record: Mapping[str, Any],
        source_key: str,
        channel: str,
        number: int,
        ingested_at: datetime,
    ) -> Review:
        values = {
            canonical: next((record[a] for a in aliases if a in record), None)
            for canonical, aliases in COLUMN_ALIASES.items()
        }
        for name, value in values.items():
            self._check_scalar(name, value)
        text = _clean_str(values["text"])
        if text is None:
            raise RecordError(QuarantineReason.MISSING_TEXT, "review text is empty")
        rating = _parse_int("rating", values["rating"])
        if rating is not None and not 1 <= rating <= 5:
            raise RecordError(QuarantineReason.RATING_OUT_OF_RANGE, f"rating {rating} is outside 1..5")
        age = _parse_int("age", values["age"])
        if age is not None and not 0 < age < 130:
            raise RecordError(QuarantineReason.INVALID_VALUE, f"age {age} is outside 1..129")
        product_id = _clean_str(values["product_id"])
        if product_id is not None and product_id.endswith(".0") and product_id[:-2].isdigit():
            product_id = product_id[:-2]
        return Review(
            review_id=review_id_for(channel, source_key, number, _clean_str(values["review_id"])),
            channel=channel,
            product_id=product_id,
            division=_clean_str(values["division"]),
            department=_clean_str(values["department"]),
            product_class=_clean_str(values["product_class"]),
            age=age,
            title=_clean_str(values["title"]),
            text=text,
            rating=rating,
            recommended=_parse_bool(values["recommended"]),
            sentiment=sentiment_from_rating(rating),
            source_key=source_key,
            record_number=number,
            ingested_at=ingested_at,
        )

    def _check_scalar(self, name: str, value: Any) -> None:
        """A field is a scalar; a string one is valid UTF-8 and within the length limit."""
        if isinstance(value, str):
            if _has_surrogates(value):
                raise RecordError(QuarantineReason.BAD_ENCODING, f"{name} is not valid UTF-8")
            if len(value) > self.limits.max_field_chars:
                raise RecordError(
                    QuarantineReason.OVERSIZED_FIELD,
                    f"{name} has {len(value)} characters (limit {self.limits.max_field_chars})",
                )
        elif isinstance(value, dict | list):
            raise RecordError(QuarantineReason.INVALID_VALUE, f"{name} must be a scalar")


# -- reading the whole object: each step raises _ObjectRejectedError to quarantine it whole ---------------


def _read_bounded(chunks: Iterable[bytes], max_bytes: int) -> bytearray:
    reader = BoundedReader(max_bytes)
    try:
        for chunk in chunks:
            if chunk:
                reader.feed(chunk)
        return reader.finish().data
    except ObjectTooLargeError as err:
        raise _ObjectRejectedError(
            RecordError(QuarantineReason.OBJECT_TOO_LARGE, err.detail), err.head
        ) from err
    except RecordError as err:
        raise _ObjectRejectedError(err, reader.raw_head) from err


def _decode_text(data: bytearray) -> str:
    try:
        text = decode(data)
    except RecordError as err:
        raise _ObjectRejectedError(err, data) from err
    if not text.strip():
        raise _ObjectRejectedError(RecordError(QuarantineReason.UNREADABLE_FILE, "object is empty"), data)
    return text


def _file_format(source_key: str, text: str, data: bytearray) -> FileFormat:
    """The format the key or the first characters name; CSV for text that names none."""
    fmt = detect_format(source_key, text[:1024])
    if fmt is not None:
        return fmt
    if "\x00" in text[:4096]:
        raise _ObjectRejectedError(RecordError(QuarantineReason.UNSUPPORTED_FORMAT, "binary content"), data)
    return FileFormat.CSV


# -- field values -----------------------------------------------------------------------------------


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _clean_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _parse_int(name: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RecordError(QuarantineReason.INVALID_VALUE, f"{name} is not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError(QuarantineReason.INVALID_VALUE, f"{name} is not a number: {value!r}") from exc
    if math.isnan(number) or not number.is_integer():
        raise RecordError(QuarantineReason.INVALID_VALUE, f"{name} is not a whole number: {value!r}")
    return int(number)


def _parse_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RecordError(QuarantineReason.INVALID_VALUE, f"recommended is not a boolean: {value!r}")
