"""``reviewsense score --batch``: score a whole file or lake table, as SageMaker Batch Transform does.

Reading, rejecting, scoring and writing are separate steps so that every input takes the same path:

* **read** (``read_file`` / ``read_table``): CSV with a text column, JSON Lines, a JSON document, the
  raw Kaggle CSV as downloaded (gzip or not), or a catalogued lake table read with the same SQL path
  as ``reviewsense query`` (Athena on AWS, DuckDB locally). Columns are matched with the ingest's
  aliases (``chalicelib.domain.reviews.COLUMN_ALIASES``), so ``Review Text`` or ``body`` work too.
  Each input record becomes a ``BatchRow`` (row number, id, title, text) or a ``Reject`` with a reason
  from ``RejectReason``: rows without text, rows that cannot be read, texts too long to send. Nothing
  is dropped silently: rejects go to ``<out>.rejects.jsonl`` next to the predictions.
* **score**: ``LocalModelScorer`` loads a model directory or ``model.tar.gz`` with
  ``training.model_io`` (the serving handler's own ``SentimentPredictor``) and scores in chunks, in
  this process, with no cloud; ``reviewsense.batchtransform`` runs a SageMaker Batch Transform job on
  the champion model (AWS, and the local cloud's stand-in of it).
* **write** (``write_predictions``): one row per scored input, joined back to the input by row number
  (never by position in the model's answer): ``row, id, label, score, p_<class>``; CSV, JSON Lines or
  Parquet from the output's extension.

Progress goes to stderr through ``Progress``: count, rate and ETA.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from chalicelib.domain.labels import CLASS_NAMES
from chalicelib.domain.quarantine import QuarantineReason, RecordError
from chalicelib.domain.review_formats import FileFormat, detect_format, normalise_column, read_records
from chalicelib.domain.reviews import COLUMN_ALIASES
from reviewsense.errors import OperatorError

#: The longest review text sent to a model (the ingest's own field limit, ``ParseLimits``).
MAX_TEXT_CHARS = 20_000
#: Rows per scoring call of the local scorer (also the progress step).
LOCAL_CHUNK = 256
OUTPUT_FORMATS = (".csv", ".jsonl", ".parquet")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RejectReason(StrEnum):
    """Why an input row was not scored. One place for the codes (the lead may unify them with the
    serving handler's client-error reasons)."""

    MISSING_TEXT = "missing_text"
    UNREADABLE_ROW = "unreadable_row"
    TEXT_TOO_LONG = "text_too_long"


@dataclass(frozen=True)
class BatchRow:
    """One input record to score: ``row`` is its 1-based position in the input, ``id`` its review id
    (the input's own id column, else the row number)."""

    row: int
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Reject:
    row: int
    id: str
    reason: RejectReason
    detail: str
    raw: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "id": self.id,
            "reason": self.reason.value,
            "detail": self.detail,
            "raw": self.raw,
        }


@dataclass
class BatchInput:
    source: str
    rows: list[BatchRow] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.rejects)


@dataclass(frozen=True)
class Prediction:
    row: int
    id: str
    label: str
    score: float
    probabilities: Mapping[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "id": self.id,
            "label": self.label,
            "score": self.score,
            "probabilities": dict(self.probabilities),
        }


# -- reading ---------------------------------------------------------------------------------------


def _first(record: Mapping[str, Any], aliases: Iterable[str]) -> tuple[bool, Any]:
    for name in aliases:
        if name in record:
            return True, record[name]
    return False, None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(QuarantineReason.INVALID_VALUE, f"text is a {type(value).__name__}, not a string")
    return str(value)


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def map_record(row: int, record: Mapping[str, Any], raw: str) -> BatchRow | Reject:
    """One record (keys normalised by ``normalise_column``) as a row to score, or a reject."""
    found_id, upstream_id = _first(record, COLUMN_ALIASES["review_id"])
    review_id = str(row) if not found_id or _blank(upstream_id) else str(upstream_id).strip()
    if _has_surrogates(raw):
        return Reject(row, review_id, RejectReason.UNREADABLE_ROW, "not valid UTF-8", _printable(raw))
    found_text, text = _first(record, COLUMN_ALIASES["text"])
    if not found_text or _blank(text):
        return Reject(row, review_id, RejectReason.MISSING_TEXT, "no review text", raw)
    _, title = _first(record, COLUMN_ALIASES["title"])
    try:
        text_str = _text_value(text).strip()
        title_str = "" if _blank(title) else _text_value(title).strip()
    except RecordError as exc:
        return Reject(row, review_id, RejectReason.UNREADABLE_ROW, exc.detail, raw)
    if len(text_str) > MAX_TEXT_CHARS:
        detail = f"text has {len(text_str)} characters (limit {MAX_TEXT_CHARS})"
        return Reject(row, review_id, RejectReason.TEXT_TOO_LONG, detail, raw[:1000])
    return BatchRow(row, review_id, title_str, text_str)


def _printable(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _decode(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    # Undecodable bytes survive as lone surrogates: their rows are rejected, the others are scored.
    return data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")


def parse_file(name: str, data: bytes) -> BatchInput:
    """The rows and rejects of one file's bytes (``name`` decides the format, else its first bytes)."""
    text = _decode(data)
    file_format = detect_format(name, text[:1024])
    if file_format is None:
        raise OperatorError(f"{name}: not CSV, JSON Lines or JSON (name it .csv, .jsonl or .json)")
    if file_format is FileFormat.CSV:
        header = next(csv.reader(io.StringIO(text, newline="")), [])
        if not {normalise_column(h) for h in header} & set(COLUMN_ALIASES["text"]):
            columns = ", ".join(COLUMN_ALIASES["text"])
            raise OperatorError(f"{name}: no text column (one of: {columns}; case and spaces ignored)")
    out = BatchInput(name)
    try:
        # no required columns: a record without text is rejected below, with its id
        records = read_records(file_format, text, required={}, max_field_chars=MAX_TEXT_CHARS * 4)
        for record in records:
            if record.fields is None:  # a line that is not CSV of the header's width, or not JSON
                assert record.error is not None
                reason, detail = RejectReason.UNREADABLE_ROW, record.error.detail
                out.rejects.append(Reject(record.number, str(record.number), reason, detail, record.raw))
                continue
            _add(out, map_record(record.number, record.fields, record.raw))
    except RecordError as exc:  # a JSON document that cannot be read at all
        raise OperatorError(f"{name}: {exc.detail}") from exc
    return out


def _add(out: BatchInput, item: BatchRow | Reject) -> None:
    if isinstance(item, BatchRow):
        out.rows.append(item)
    else:
        out.rejects.append(item)


def read_file(path: Path) -> BatchInput:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OperatorError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_file(str(path), data)


def table_name(source: str) -> str | None:
    """``table:NAME`` or a bare table name (not an existing path) names a lake table."""
    if source.startswith("table:"):
        name = source.removeprefix("table:")
    elif not Path(source).exists() and _TABLE_NAME.match(source.removeprefix("reviewsense.")):
        name = source.removeprefix("reviewsense.")
    else:
        return None
    if not _TABLE_NAME.match(name):
        raise OperatorError(f"{name!r} is not a table name")
    return name


def rows_of_records(source: str, records: Iterable[Mapping[str, Any]]) -> BatchInput:
    """Table rows (column name -> value) as rows to score; their position is the row number."""
    out = BatchInput(source)
    for number, raw_record in enumerate(records, start=1):
        record = {normalise_column(str(k)): v for k, v in raw_record.items()}
        raw = json.dumps(raw_record, ensure_ascii=False, default=str)
        _add(out, map_record(number, record, raw))
    return out


def read_table(tgt: Any, name: str) -> BatchInput:
    """A catalogued lake table, read as ``reviewsense query`` reads it (Athena on AWS, DuckDB locally)."""
    from botocore.exceptions import ClientError

    from chalicelib.adapters.aws_errors import error_code
    from reviewsense.lakequery import run_query

    database = tgt.settings.glue_database
    try:
        tgt.client("glue").get_table(DatabaseName=database, Name=name)
    except ClientError as exc:
        if error_code(exc) == "EntityNotFoundException":
            raise OperatorError(f"no table {name} in the catalog database {database}") from exc
        raise
    result = run_query(tgt, f'SELECT * FROM "{name}"')
    if not set(map(normalise_column, result.columns)) & set(COLUMN_ALIASES["text"]):
        raise OperatorError(f"table {name} has no text column (columns: {', '.join(result.columns)})")
    return rows_of_records(f"table:{name}", result.records())


# -- progress ----------------------------------------------------------------------------------------


class Progress:
    """``scored N/TOTAL (P %)  R reviews/s  ETA S`` on a stream, at most every ``interval_s``."""

    def __init__(
        self,
        total: int,
        what: str = "scored",
        stream: TextIO | None = None,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.what = what
        self.stream = stream
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self.done = 0
        self._shown_at: float | None = None
        self._shown_done = -1

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        pct = 100.0 * done / self.total if self.total else 100.0
        if done >= self.total:
            eta = "done"
        elif rate > 0:
            eta = f"ETA {format_seconds((self.total - done) / rate)}"
        else:
            eta = "ETA unknown"
        return f"{self.what} {done:,}/{self.total:,} ({pct:.1f} %)  {rate:,.0f} reviews/s  {eta}"

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = self.clock()
        due = self._shown_at is None or now - self._shown_at >= self.interval_s
        if (due or force or done >= self.total) and done != self._shown_done:
            print(self.line(done, now), file=self.stream or sys.stderr, flush=True)
            self._shown_at, self._shown_done = now, done

    def note(self, message: str) -> None:
        print(message, file=self.stream or sys.stderr, flush=True)

    def rate(self) -> float:
        return self.done / max(self.clock() - self.started, 1e-9)


def format_seconds(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# -- scoring in this process ---------------------------------------------------------------------------


def prediction_of(row: BatchRow, answer: Mapping[str, Any]) -> Prediction:
    """One model answer (``{"label", "score", "probabilities"}``, the serving handler's shape)."""
    probabilities = {str(k): float(v) for k, v in dict(answer["probabilities"]).items()}
    return Prediction(row.row, row.id, str(answer["label"]), float(answer["score"]), probabilities)


def chunks(rows: Sequence[BatchRow], size: int) -> Iterator[Sequence[BatchRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class LocalModelScorer:
    """A model directory or ``model.tar.gz`` scored in this process with ``training/inference.py``."""

    def __init__(self, model: Path, batch_size: int | None = None) -> None:
        from training.model_io import load_predictor

        try:
            self.predictor = load_predictor(model, batch_size=batch_size)
        except FileNotFoundError as exc:
            raise OperatorError(f"--model {model}: {exc}") from exc

    def score(
        self, rows: Sequence[BatchRow], progress: Progress, chunk: int = LOCAL_CHUNK
    ) -> list[Prediction]:
        out: list[Prediction] = []
        for part in chunks(rows, chunk):
            answers = self.predictor.predict([{"title": r.title, "text": r.text} for r in part])
            out += [prediction_of(r, a) for r, a in zip(part, answers, strict=True)]
            progress.update(len(out))
        return out


# -- writing ------------------------------------------------------------------------------------------


def output_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise OperatorError(f"--out {out}: name it .csv, .jsonl or .parquet")
    return suffix


def rejects_path(out: Path) -> Path:
    """``preds.csv`` -> ``preds.rejects.jsonl``, next to the predictions."""
    return out.with_name(f"{out.stem}.rejects.jsonl")


def flat_columns(labels: Sequence[str] = CLASS_NAMES) -> list[str]:
    return ["row", "id", "label", "score", *(f"p_{n}" for n in labels)]


def _flat(p: Prediction, labels: Sequence[str]) -> list[Any]:
    return [p.row, p.id, p.label, p.score, *(p.probabilities.get(n, 0.0) for n in labels)]


def write_predictions(out: Path, predictions: Sequence[Prediction]) -> None:
    """Predictions in row order, in the format of ``out``'s extension."""
    suffix = output_format(out)
    ordered = sorted(predictions, key=lambda p: p.row)
    labels = list(CLASS_NAMES) + sorted({k for p in ordered for k in p.probabilities} - set(CLASS_NAMES))
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".jsonl":
        with out.open("w", encoding="utf-8") as fh:
            for p in ordered:
                fh.write(json.dumps(p.as_dict(), ensure_ascii=False) + "\n")
    elif suffix == ".csv":
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(flat_columns(labels))
            writer.writerows(_flat(p, labels) for p in ordered)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = flat_columns(labels)
        flat = [_flat(p, labels) for p in ordered]
        types = [pa.int64(), pa.string(), pa.string(), *([pa.float64()] * (len(columns) - 3))]
        table = pa.table(
            {
                c: pa.array([r[i] for r in flat], type=t)
                for i, (c, t) in enumerate(zip(columns, types, strict=True))
            }
        )
        pq.write_table(table, out)


def write_rejects(out: Path, rejects: Sequence[Reject]) -> Path:
    path = rejects_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for r in sorted(rejects, key=lambda r: r.row):
            fh.write(json.dumps(r.as_dict(), ensure_ascii=False) + "\n")
    return path


# -- the command's steps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSummary:
    source: str
    total: int
    scored: int
    rejected: int
    reasons: dict[str, int]
    seconds: float
    out: Path
    rejects: Path
    engine: str

    @property
    def rate(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else 0.0


def reason_counts(rejects: Iterable[Reject]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rejects:
        counts[r.reason.value] = counts.get(r.reason.value, 0) + 1
    return dict(sorted(counts.items()))


def check_joined(rows: Sequence[BatchRow], predictions: Sequence[Prediction]) -> None:
    """Every row scored exactly once, under its own id: a join that lost or mixed rows is an error."""
    want = {r.row: r.id for r in rows}
    got = {p.row: p.id for p in predictions}
    if len(predictions) != len(got) or got != want:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        raise OperatorError(
            f"the scores do not join the input: {len(want)} rows, {len(predictions)} predictions "
            f"(missing rows {missing}, unexpected rows {extra})"
        )


def run_batch(
    batch: BatchInput,
    out: Path,
    score: Callable[[Sequence[BatchRow], Progress], list[Prediction]],
    engine: str,
    progress_stream: TextIO | None = None,
    progress_interval_s: float = 1.0,
) -> BatchSummary:
    """Score ``batch`` with ``score``, check the join, write predictions and rejects."""
    output_format(out)
    progress = Progress(len(batch.rows), stream=progress_stream, interval_s=progress_interval_s)
    progress.update(0, force=True)
    started = time.monotonic()
    predictions = score(batch.rows, progress) if batch.rows else []
    seconds = time.monotonic() - started
    progress.update(len(predictions), force=True)
    check_joined(batch.rows, predictions)
    write_predictions(out, predictions)
    rejected = write_rejects(out, batch.rejects)
    return BatchSummary(
        batch.source,
        batch.total,
        len(predictions),
        len(batch.rejects),
        reason_counts(batch.rejects),
        seconds,
        out,
        rejected,
        engine,
    )
