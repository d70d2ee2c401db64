"""The upstream file formats: which one an object is, and how each is read into numbered records.

Upstream channels send CSV, JSON (a list, an object holding a list, or one object) and JSON Lines. Each
reader turns the decoded text into ``RawRecord``s: the record's number, its fields keyed by normalised
column name (``normalise_column``), the raw text to keep if it is quarantined, and the ``RecordError``
when it cannot be read or lacks a required column. Which columns are required, and what the fields mean,
is the canonical schema's business (``chalicelib.domain.reviews``): it is passed in as
``RequiredColumns``. Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from chalicelib.domain.quarantine import QuarantineReason, RecordError


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"


#: Canonical field -> the normalised upstream column names that may carry it, for the required fields.
RequiredColumns = Mapping[str, tuple[str, ...]]

_NORMALISE = re.compile(r"[^0-9a-z]+")


def normalise_column(name: str) -> str:
    """``"Review Text"`` -> ``"review_text"``; the Kaggle file's unnamed index column -> ``""``."""
    return _NORMALISE.sub("_", name.strip().lstrip("\ufeff").lower()).strip("_")


class RawRecord(NamedTuple):
    """One input record before mapping: ``fields`` is None exactly when ``error`` says why."""

    number: int
    fields: Mapping[str, Any] | None
    raw: str
    error: RecordError | None


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


def read_records(
    file_format: FileFormat, text: str, *, required: RequiredColumns, max_field_chars: int
) -> Iterator[RawRecord]:
    """The records of ``text``; a JSON document that cannot be read raises ``RecordError`` here, at once."""
    if file_format is FileFormat.CSV:
        return csv_records(text, required=required, max_field_chars=max_field_chars)
    if file_format is FileFormat.JSONL:
        return jsonl_records(text, required=required)
    return json_records(text, required=required)


def missing_required(columns: Iterable[str], required: RequiredColumns) -> list[str]:
    """The required fields none of ``columns`` can carry."""
    present = set(columns)
    return [name for name, aliases in required.items() if not present.intersection(aliases)]


def csv_records(text: str, *, required: RequiredColumns, max_field_chars: int) -> Iterator[RawRecord]:
    csv.field_size_limit(max(max_field_chars * 4, 1 << 20))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        yield RawRecord(
            0, None, text[:1024], RecordError(QuarantineReason.UNPARSABLE_LINE, f"no CSV header: {exc}")
        )
        return
    columns = [normalise_column(h) for h in header]
    missing = missing_required(columns, required)
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield RawRecord(
                number,
                None,
                f"<line {reader.line_num}>",
                RecordError(QuarantineReason.UNPARSABLE_LINE, f"CSV error: {exc}"),
            )
            continue
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines are not records
        number += 1
        yield _csv_record(number, row, columns, missing)


def _csv_record(number: int, row: list[str], columns: list[str], missing: list[str]) -> RawRecord:
    raw = _csv_line(row)
    if missing:
        return _rejected(
            number,
            raw,
            QuarantineReason.MISSING_REQUIRED_COLUMNS,
            f"file has no column for {', '.join(missing)}",
        )
    if len(row) != len(columns):
        return RawRecord(
            number,
            None,
            raw,
            RecordError(
                QuarantineReason.UNPARSABLE_LINE, f"expected {len(columns)} fields, found {len(row)}"
            ),
        )
    return RawRecord(number, dict(zip(columns, row, strict=True)), raw, None)


def jsonl_records(text: str, *, required: RequiredColumns) -> Iterator[RawRecord]:
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # nesting deeper than the interpreter's limit
            yield RawRecord(
                number, None, line, RecordError(QuarantineReason.UNPARSABLE_LINE, f"invalid JSON: {exc}")
            )
            continue
        yield _object_record(number, obj, line, required)


def json_records(text: str, *, required: RequiredColumns) -> Iterator[RawRecord]:
    """Raises ``RecordError`` before returning when the document is not JSON or holds no records."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # nesting deeper than the interpreter's limit
        raise RecordError(QuarantineReason.UNREADABLE_FILE, f"invalid JSON document: {exc}") from exc
    if isinstance(doc, dict):
        items = next(
            (doc[k] for k in ("reviews", "records", "items", "data") if isinstance(doc.get(k), list)),
            [doc],
        )
    elif isinstance(doc, list):
        items = doc
    else:
        raise RecordError(QuarantineReason.UNREADABLE_FILE, "JSON document is neither an object nor a list")
    return (
        _object_record(number, obj, json.dumps(obj, ensure_ascii=False), required)
        for number, obj in enumerate(items, start=1)
    )


def _object_record(number: int, obj: Any, raw: str, required: RequiredColumns) -> RawRecord:
    if not isinstance(obj, dict):
        return RawRecord(
            number, None, raw, RecordError(QuarantineReason.UNPARSABLE_LINE, "record is not a JSON object")
        )
    record = {normalise_column(str(k)): v for k, v in obj.items()}
    missing = missing_required(record, required)
    if missing:
        return _rejected(
            number,
            raw,
            QuarantineReason.MISSING_REQUIRED_COLUMNS,
            f"record has no field for {', '.join(missing)}",
        )
    return RawRecord(number, record, raw, None)


def _rejected(number: int, raw: str, reason: QuarantineReason, detail: str) -> RawRecord:
    return RawRecord(number, None, raw, RecordError(reason, detail))


def _csv_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()
