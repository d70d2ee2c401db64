"""The canonical review schema and the parser that maps any upstream file onto it.

Upstream channels send CSV (plain or gzip), JSON and JSON Lines with their own column names. This
module turns the bytes of one uploaded object (streamed, gzip undone on the fly, its decompressed
size bounded so a gzip bomb cannot exhaust memory) into canonical ``Review`` rows plus one
``QuarantinedRecord`` per bad record, each with a machine-readable reason. Nothing is lost: every
input record ends up in exactly one of the two lists (``ParseResult.total_records`` counts them).
Pure: no I/O, no clock, no environment.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.labels import sentiment_from_rating


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


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"


#: Upstream column names (normalised: lower case, non-alphanumerics as ``_``) for each canonical field.
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
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
_NORMALISE = re.compile(r"[^0-9a-z]+")


def normalise_column(name: str) -> str:
    """``"Review Text"`` -> ``"review_text"``; the Kaggle file's unnamed index column -> ``""``."""
    return _NORMALISE.sub("_", name.strip().lstrip("\ufeff").lower()).strip("_")


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


class _RecordError(Exception):
    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def detect_format(key: str, text_head: str) -> FileFormat | None:
    """Pick the parser from the object key, falling back to sniffing the first characters."""
    name = key.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".jsonl", ".ndjson")):
        return FileFormat.JSONL
    if name.endswith(".json"):
        return FileFormat.JSON
    if name.endswith((".csv", ".txt")):
        return FileFormat.CSV
    stripped = text_head.lstrip()
    if stripped.startswith("["):
        return FileFormat.JSON
    if stripped.startswith("{"):
        return FileFormat.JSONL
    return None


GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 2048
_PIECE_BYTES = 1 << 20


class ObjectTooLargeError(Exception):
    """The decompressed content passed the limit; the counts say how far reading got before it stopped."""

    def __init__(
        self, limit: int, compressed_bytes: int, decompressed_bytes: int, *, gzip: bool, head: bytes
    ) -> None:
        self.limit = limit
        self.compressed_bytes = compressed_bytes
        self.decompressed_bytes = decompressed_bytes
        self.gzip = gzip
        self.head = head
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        if self.gzip:
            return (
                f"decompressed size exceeds the limit of {self.limit} bytes: reading stopped after "
                f"{self.compressed_bytes} compressed bytes had inflated to {self.decompressed_bytes} bytes"
            )
        return (
            f"size exceeds the limit of {self.limit} bytes: "
            f"reading stopped after {self.compressed_bytes} bytes"
        )


@dataclass(frozen=True)
class BoundedContent:
    """What a bounded read produced: the (decompressed) bytes and the byte counts on both sides."""

    data: bytearray  # not copied into ``bytes``: the content may be as large as the limit
    compressed_bytes: int
    gzip: bool

    @property
    def decompressed_bytes(self) -> int:
        return len(self.data)


class _BoundedReader:
    """Incremental gzip-or-plain reader that never holds more than ``limit + 1`` output bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._out = bytearray()
        self._pending = b""  # the first bytes, until there are two to compare with the gzip magic
        self._mode: str | None = None  # None (undecided), "plain" or "gzip"
        self._inflater: Any = None
        self._seen = 0
        self.raw_head = b""  # the first input bytes, for the quarantine record of an unreadable object

    def feed(self, chunk: bytes) -> None:
        if len(self.raw_head) < _HEAD_BYTES:
            self.raw_head += chunk[: _HEAD_BYTES - len(self.raw_head)]
        self._seen += len(chunk)
        if self._mode is None:
            self._pending += chunk
            if len(self._pending) < len(GZIP_MAGIC):
                return
            chunk, self._pending = self._pending, b""
            self._mode = "gzip" if chunk.startswith(GZIP_MAGIC) else "plain"
        if self._mode == "plain":
            self._out += chunk
            self._check()
        else:
            self._inflate(chunk)

    def finish(self) -> BoundedContent:
        if self._mode is None:
            self._out += self._pending
            self._mode = "plain"
        if self._mode == "gzip" and not (self._inflater is not None and self._inflater.eof):
            raise _RecordError(
                QuarantineReason.UNREADABLE_FILE,
                "corrupt gzip stream: compressed file ended before the end-of-stream marker was reached",
            )
        return BoundedContent(self._out, self._seen, self._mode == "gzip")

    def _check(self) -> None:
        if len(self._out) > self._limit:
            raise ObjectTooLargeError(
                self._limit,
                self._seen,
                len(self._out),
                gzip=self._mode == "gzip",
                head=bytes(self._out[:_HEAD_BYTES]),
            )

    def _inflate(self, data: bytes) -> None:
        try:
            while True:
                if self._inflater is None or self._inflater.eof:
                    if self._inflater is not None:
                        data = data.lstrip(b"\x00")  # zero padding after a member, as gzip allows
                    if not data:
                        return
                    if not GZIP_MAGIC.startswith(data[:2]):
                        raise _RecordError(
                            QuarantineReason.UNREADABLE_FILE, "corrupt gzip stream: trailing garbage"
                        )
                    self._inflater = zlib.decompressobj(wbits=31)  # the next gzip member
                # Inflate in small pieces, never past the first byte over the limit.
                room = min(self._limit - len(self._out) + 1, _PIECE_BYTES)
                piece = self._inflater.decompress(data, room)
                self._out += piece
                self._check()
                if self._inflater.eof:
                    data = self._inflater.unused_data
                else:
                    data = self._inflater.unconsumed_tail
                    if not data and len(piece) < room:
                        return  # all input consumed and no output pending
        except zlib.error as exc:
            raise _RecordError(QuarantineReason.UNREADABLE_FILE, f"corrupt gzip stream: {exc}") from exc


def decode(data: bytes | bytearray) -> str:
    """Decode UTF-8 (with or without BOM) or BOM-marked UTF-16.

    Invalid UTF-8 bytes survive as lone surrogates (``surrogateescape``) so that only the records
    containing them are quarantined, not the whole file.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _RecordError(QuarantineReason.BAD_ENCODING, f"invalid UTF-16: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="surrogateescape")


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def printable(value: str) -> str:
    """A raw record as valid UTF-8 text for the quarantine table (bad bytes shown as ``\\xNN``)."""
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _clean_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _parse_int(name: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _RecordError(QuarantineReason.INVALID_VALUE, f"{name} is not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise _RecordError(QuarantineReason.INVALID_VALUE, f"{name} is not a number: {value!r}") from exc
    if math.isnan(number) or not number.is_integer():
        raise _RecordError(QuarantineReason.INVALID_VALUE, f"{name} is not a whole number: {value!r}")
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
    raise _RecordError(QuarantineReason.INVALID_VALUE, f"recommended is not a boolean: {value!r}")


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

        def quarantine_file(reason: QuarantineReason, detail: str, head: bytes | bytearray) -> ParseResult:
            result.quarantined.append(
                QuarantinedRecord(source_key, channel, 0, reason, detail, printable(_head(head)), ingested_at)
            )
            return result

        reader = _BoundedReader(max_bytes)
        try:
            for chunk in chunks:
                if chunk:
                    reader.feed(chunk)
            content = reader.finish()
        except ObjectTooLargeError as err:
            return quarantine_file(QuarantineReason.OBJECT_TOO_LARGE, err.detail, err.head)
        except _RecordError as err:
            return quarantine_file(err.reason, err.detail, reader.raw_head)
        data = content.data
        try:
            text = decode(data)
        except _RecordError as err:
            return quarantine_file(err.reason, err.detail, data)
        if not text.strip():
            return quarantine_file(QuarantineReason.UNREADABLE_FILE, "object is empty", data)
        fmt = detect_format(source_key, text[:1024])
        if fmt is None:
            if "\x00" in text[:4096]:
                return quarantine_file(QuarantineReason.UNSUPPORTED_FORMAT, "binary content", data)
            fmt = FileFormat.CSV
        result.file_format = fmt
        records: Iterator[tuple[int, Mapping[str, Any] | None, str, _RecordError | None]]
        if fmt is FileFormat.CSV:
            records = self._csv_records(text)
        elif fmt is FileFormat.JSONL:
            records = self._jsonl_records(text)
        else:
            try:
                records = self._json_records(text)
            except _RecordError as err:
                return quarantine_file(err.reason, err.detail, data)

        for number, record, raw, error in records:
            try:
                if error is not None:
                    raise error
                assert record is not None
                result.reviews.append(self._to_review(record, source_key, channel, number, ingested_at))
            except _RecordError as err:
                result.quarantined.append(
                    QuarantinedRecord(
                        source_key, channel, number, err.reason, err.detail, printable(raw), ingested_at
                    )
                )
        return result

    # -- format readers: yield (record_number, mapping or None, raw text, error or None) -------------

    def _csv_records(
        self, text: str
    ) -> Iterator[tuple[int, Mapping[str, Any] | None, str, _RecordError | None]]:
        csv.field_size_limit(max(self.limits.max_field_chars * 4, 1 << 20))
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except (StopIteration, csv.Error) as exc:
            yield (
                0,
                None,
                text[:1024],
                _RecordError(QuarantineReason.UNPARSABLE_LINE, f"no CSV header: {exc}"),
            )
            return
        columns = [normalise_column(h) for h in header]
        missing = self._missing_required(columns)
        number = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield (
                    number,
                    None,
                    f"<line {reader.line_num}>",
                    _RecordError(QuarantineReason.UNPARSABLE_LINE, f"CSV error: {exc}"),
                )
                continue
            if not row or all(not cell.strip() for cell in row):
                continue  # blank lines are not records
            number += 1
            raw = _csv_line(row)
            if missing:
                yield (
                    number,
                    None,
                    raw,
                    _RecordError(
                        QuarantineReason.MISSING_REQUIRED_COLUMNS,
                        f"file has no column for {', '.join(missing)}",
                    ),
                )
            elif len(row) != len(columns):
                yield (
                    number,
                    None,
                    raw,
                    _RecordError(
                        QuarantineReason.UNPARSABLE_LINE, f"expected {len(columns)} fields, found {len(row)}"
                    ),
                )
            else:
                yield number, dict(zip(columns, row, strict=True)), raw, None

    def _jsonl_records(
        self, text: str
    ) -> Iterator[tuple[int, Mapping[str, Any] | None, str, _RecordError | None]]:
        number = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            number += 1
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield (
                    number,
                    None,
                    line,
                    _RecordError(QuarantineReason.UNPARSABLE_LINE, f"invalid JSON: {exc}"),
                )
                continue
            yield self._object_record(number, obj, line)

    def _json_records(
        self, text: str
    ) -> Iterator[tuple[int, Mapping[str, Any] | None, str, _RecordError | None]]:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise _RecordError(QuarantineReason.UNREADABLE_FILE, f"invalid JSON document: {exc}") from exc
        if isinstance(doc, dict):
            items = next(
                (doc[k] for k in ("reviews", "records", "items", "data") if isinstance(doc.get(k), list)),
                [doc],
            )
        elif isinstance(doc, list):
            items = doc
        else:
            raise _RecordError(
                QuarantineReason.UNREADABLE_FILE, "JSON document is neither an object nor a list"
            )
        return (
            self._object_record(number, obj, json.dumps(obj, ensure_ascii=False))
            for number, obj in enumerate(items, start=1)
        )

    def _object_record(
        self, number: int, obj: Any, raw: str
    ) -> tuple[int, Mapping[str, Any] | None, str, _RecordError | None]:
        if not isinstance(obj, dict):
            return (
                number,
                None,
                raw,
                _RecordError(QuarantineReason.UNPARSABLE_LINE, "record is not a JSON object"),
            )
        record = {normalise_column(str(k)): v for k, v in obj.items()}
        missing = self._missing_required(list(record))
        if missing:
            return (
                number,
                None,
                raw,
                _RecordError(
                    QuarantineReason.MISSING_REQUIRED_COLUMNS, f"record has no field for {', '.join(missing)}"
                ),
            )
        return number, record, raw, None

    # -- mapping one record -----------------------------------------------------------------------

    @staticmethod
    def _missing_required(columns: list[str]) -> list[str]:
        present = set(columns)
        return [f for f in REQUIRED_FIELDS if not present.intersection(COLUMN_ALIASES[f])]

    def _to_review(
        self,
        record: Mapping[str, Any],
        source_key: str,
        channel: str,
        number: int,
        ingested_at: datetime,
    ) -> Review:
        values: dict[str, Any] = {}
        for canonical, aliases in COLUMN_ALIASES.items():
            values[canonical] = next((record[a] for a in aliases if a in record), None)
        for name, value in values.items():
            if isinstance(value, str):
                if _has_surrogates(value):
                    raise _RecordError(QuarantineReason.BAD_ENCODING, f"{name} is not valid UTF-8")
                if len(value) > self.limits.max_field_chars:
                    raise _RecordError(
                        QuarantineReason.OVERSIZED_FIELD,
                        f"{name} has {len(value)} characters (limit {self.limits.max_field_chars})",
                    )
            elif isinstance(value, dict | list):
                raise _RecordError(QuarantineReason.INVALID_VALUE, f"{name} must be a scalar")
        text = _clean_str(values["text"])
        if text is None:
            raise _RecordError(QuarantineReason.MISSING_TEXT, "review text is empty")
        rating = _parse_int("rating", values["rating"])
        if rating is not None and not 1 <= rating <= 5:
            raise _RecordError(QuarantineReason.RATING_OUT_OF_RANGE, f"rating {rating} is outside 1..5")
        age = _parse_int("age", values["age"])
        if age is not None and not 0 < age < 130:
            raise _RecordError(QuarantineReason.INVALID_VALUE, f"age {age} is outside 1..129")
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


def _csv_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


def _head(data: bytes | bytearray, limit: int = _HEAD_BYTES) -> str:
    return bytes(data[:limit]).decode("utf-8", errors="surrogateescape")
