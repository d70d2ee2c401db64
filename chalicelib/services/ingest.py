"""Ingestion use case: one raw object in, curated Parquet + quarantine + catalog + an event out.

Called by the ingest Lambda for every S3 "Object Created" event under ``raw/``, except the feedback
files under ``raw/feedback/``: those belong to the real-time fan-in (``chalicelib.services.fanin``).
The EventBridge rule cannot say "prefix raw/ but not raw/feedback/" on one field, so this service
skips them with ``status: skipped`` and the reason. Safe to run any
number of times for the same object: outputs are written at keys derived from the source object,
outputs of an earlier version of the same key are removed, and a run-once guard skips redeliveries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from chalicelib.adapters.s3 import ObjectNotFoundError, ObjectStore, ObjectStream
from chalicelib.config import Settings
from chalicelib.domain import lake
from chalicelib.domain.reviews import ParseLimits, ReviewParser
from chalicelib.domain.tables import QUARANTINE, REVIEWS, TableSchema

logger = Logger(child=True)

REVIEWS_INGESTED = "Reviews Ingested"
#: Why ingest leaves a key under the feedback prefix alone.
FEEDBACK_SKIP_REASON = "feedback file: scored by the real-time fan-in, not ingested"


class ParquetWriter(Protocol):
    def write(self, uri: str, schema: TableSchema, rows: Any) -> None: ...


class Catalog(Protocol):
    def ensure_table(
        self,
        database: str,
        table: str,
        location: str,
        columns: Any,
        partition_keys: Any,
        description: str = "",
    ) -> None: ...
    def ensure_partition(
        self, database: str, table: str, values: Any, location: str, columns: Any
    ) -> None: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


RunOnce = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]


@dataclass
class IngestReport:
    source_key: str
    status: str  # "ingested" | "skipped"
    reason: str = ""  # why it was skipped
    channel: str = ""
    file_format: str | None = None
    records: int = 0
    curated: int = 0
    labelled: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IngestService:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        writer: ParquetWriter,
        catalog: Catalog,
        publisher: Publisher,
        run_once: RunOnce | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._store = store
        self._writer = writer
        self._catalog = catalog
        self._publisher = publisher
        self._run_once = run_once
        self._clock = clock
        self._parser = ReviewParser(ParseLimits(max_field_chars=settings.max_field_chars))

    def ingest(self, source: lake.SourceObject) -> dict[str, Any]:
        """Ingest one raw object (at most once per object version when a run-once guard is set)."""
        if self.is_feedback(source.key):
            return IngestReport(source.key, "skipped", reason=FEEDBACK_SKIP_REASON).as_dict()
        if not self._is_raw(source):
            return IngestReport(source.key, "skipped").as_dict()
        if self._run_once is None:
            return self._ingest(source)
        if not (source.etag or source.version_id):
            # Without a version marker, redelivery and a re-upload would look alike: ask S3.
            head = self._store.head(source.bucket, self._fetch_key(source))
            source = replace(source, etag=str(head.get("ETag", "")).strip('"'))
        return self._run_once(source.idempotency_key, lambda: self._ingest(source))

    def ingest_now(self, source: lake.SourceObject) -> dict[str, Any]:
        """Ingest one raw object now, whatever the run-once guard remembers about it.

        For reconciliation, which decides from the manifest (the record that ingestion finished)
        that the object's current version was never fully ingested: the guard may hold a record
        of an earlier run that was cut off, or of the same bytes uploaded before another version.
        Outputs are keyed by the source object, so running again never duplicates rows.
        """
        if not self._is_raw(source):
            return IngestReport(source.key, "skipped").as_dict()
        return self._ingest(source)

    def ingested_etag(self, key: str) -> str | None:
        """The ETag of the version of ``key`` whose ingestion finished last (None: never ingested).

        The manifest is written as the last step of an ingest, after the curated and quarantine
        outputs, so it is the record that ingestion of that version completed.
        """
        manifest = self._store.get_json(self._s.lake_bucket, self.manifest_key(key))
        return str(manifest["etag"]) if manifest and manifest.get("etag") else None

    def manifest_key(self, key: str) -> str:
        return lake.manifest_key(self._s.curated_prefix, lake.source_digest(self._s.lake_bucket, key))

    def is_feedback(self, key: str) -> bool:
        """True for a key under the feedback prefix (``raw/feedback/``), which the fan-in handles."""
        return lake.decode_event_key(key).startswith(self._s.feedback_raw_prefix)

    def _is_raw(self, source: lake.SourceObject) -> bool:
        return source.bucket == self._s.lake_bucket and lake.is_raw_key(
            lake.decode_event_key(source.key), self._s.raw_prefix
        )

    def _ingest(self, source: lake.SourceObject) -> dict[str, Any]:
        obj = self._store.open(source.bucket, self._fetch_key(source))
        channel = lake.channel_for_key(obj.key, self._s.raw_prefix)
        landed_at = obj.last_modified.astimezone(UTC)
        # The limit is on the decompressed size and is checked while streaming: an object past it is
        # quarantined whole (``object_too_large``) after at most ``max_object_bytes`` were inflated.
        try:
            result = self._parser.parse_stream(
                obj.chunks,
                source_key=obj.key,
                channel=channel,
                ingested_at=landed_at,
                max_bytes=self._s.max_object_bytes,
            )
        finally:
            obj.chunks.close()  # reading may have stopped at the limit: release the connection now

        digest = lake.source_digest(source.bucket, obj.key)
        outputs: list[str] = []
        for schema, prefix, rows in (
            (REVIEWS, self._s.curated_prefix, [r.as_row() for r in result.reviews]),
            (QUARANTINE, self._s.quarantine_prefix, [q.as_row() for q in result.quarantined]),
        ):
            if rows:
                outputs.append(self._write_partition(schema, prefix, channel, landed_at, digest, rows))
        report = IngestReport(
            source_key=obj.key,
            status="ingested",
            channel=channel,
            file_format=result.file_format.value if result.file_format else None,
            records=result.total_records,
            curated=len(result.reviews),
            labelled=sum(1 for r in result.reviews if r.sentiment is not None),
            quarantined=len(result.quarantined),
            reasons=result.reason_counts(),
            outputs=outputs,
        )
        self._replace_previous_outputs(digest, obj, report)
        logger.info("ingested object", extra=report.as_dict())
        self._publisher.publish(REVIEWS_INGESTED, report.as_dict())
        return report.as_dict()

    def _fetch_key(self, source: lake.SourceObject) -> str:
        """EventBridge and S3 notifications may carry the key URL-encoded: try it as sent, then decoded."""
        decoded = lake.decode_event_key(source.key)
        if decoded == source.key:
            return source.key
        try:
            self._store.head(source.bucket, source.key)
            return source.key
        except ObjectNotFoundError:
            return decoded

    def _write_partition(
        self,
        schema: TableSchema,
        prefix: str,
        channel: str,
        landed_at: datetime,
        digest: str,
        rows: list[dict[str, Any]],
    ) -> str:
        key = lake.curated_key(prefix, schema.folder, channel, landed_at, digest)
        self._writer.write(f"s3://{self._s.lake_bucket}/{key}", schema, rows)
        table_location = f"s3://{self._s.lake_bucket}/{prefix}{schema.folder}/"
        self._catalog.ensure_table(
            self._s.glue_database,
            schema.name,
            table_location,
            schema.columns,
            schema.partition_keys,
            schema.description,
        )
        partition = lake.partition_path(prefix, schema.folder, channel, lake.ingest_date(landed_at))
        self._catalog.ensure_partition(
            self._s.glue_database,
            schema.name,
            [channel, lake.ingest_date(landed_at)],
            f"s3://{self._s.lake_bucket}/{partition}",
            schema.columns,
        )
        return key

    def _replace_previous_outputs(self, digest: str, obj: ObjectStream, report: IngestReport) -> None:
        manifest_key = lake.manifest_key(self._s.curated_prefix, digest)
        previous = self._store.get_json(self._s.lake_bucket, manifest_key) or {}
        stale = [k for k in previous.get("outputs", []) if k not in report.outputs]
        if stale:
            self._store.delete(self._s.lake_bucket, stale)
        self._store.put_json(
            self._s.lake_bucket,
            manifest_key,
            {
                **report.as_dict(),
                "etag": obj.etag,
                "version_id": obj.version_id,
                "processed_at": self._clock().isoformat(),
            },
        )
