"""Reconciliation: find raw objects that were never fully ingested, and ingest them.

Ingestion is driven by S3 "Object Created" events, and an event can be missed: EventBridge
delivery is at least once but not guaranteed end to end, an ingest invocation can run out of
retries, time or memory, and locally a crash can lose the event of an upload that S3 had already
acknowledged. This service is the safety net, run on a schedule and by ``reviewsense ingest
--reconcile``: it lists the raw zone and compares every object with its manifest, the record that
ingestion of a version finished (written last, after the curated and quarantine outputs, with the
ETag of the version it read). An object with no manifest, or whose manifest names another ETag (a
re-upload), is ingested through the same service the event would have reached. Objects quarantined
whole have a manifest like any other, so they count as processed. Feedback files under
``raw/feedback/`` are not the ingest's (the fan-in scores them): they are counted as
``skipped_feedback`` and never ingested.

Objects changed within the grace period are left to their own event, which is probably still on
its way; running reconciliation twice in a row does nothing the second time. A manifest written more
than ``MAX_INGEST_SECONDS`` after the object's upload comes from an ingest that started after that
upload, so it is taken as current without reading it: in the steady state a run costs two listings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from chalicelib.adapters.s3 import ListedObject, ObjectNotFoundError, ObjectStore
from chalicelib.config import Settings
from chalicelib.domain import lake
from chalicelib.errors import RetryableError

logger = Logger(child=True)

#: Lambda's largest timeout: no ingest runs longer, so none that read an older version ends later.
MAX_INGEST_SECONDS = 900


class Ingester(Protocol):
    def ingest_now(self, source: lake.SourceObject) -> dict[str, Any]: ...
    def ingested_etag(self, key: str) -> str | None: ...
    def manifest_key(self, key: str) -> str: ...


@dataclass
class ReconcileReport:
    listed: int = 0  # raw objects seen
    skipped_feedback: int = 0  # under raw/feedback/: the fan-in's, not ingested
    up_to_date: int = 0  # their current version has a manifest: nothing to do
    recent: int = 0  # changed within the grace period: left to their own event
    ingested: int = 0
    failed: int = 0  # a retryable error or the object vanished: the next run tries again
    remaining: int = 0  # not reached before the time budget ran out
    ingested_keys: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReconcileService:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        ingester: Ingester,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._store = store
        self._ingester = ingester
        self._clock = clock

    def reconcile(
        self,
        grace_seconds: float | None = None,
        time_left_s: Callable[[], float] | None = None,
        reserve_s: float = 60.0,
    ) -> dict[str, Any]:
        """Ingest every raw object whose current version has no manifest; return the counts.

        ``time_left_s`` (the Lambda's remaining time) stops the run from starting another ingest
        once fewer than ``reserve_s`` seconds are left; the rest are counted as ``remaining``.
        """
        grace = self._s.reconcile_grace_seconds if grace_seconds is None else grace_seconds
        cutoff = self._clock() - timedelta(seconds=grace)
        bucket = self._s.lake_bucket
        manifests = {
            m.key: m.last_modified
            for m in self._store.list_objects(bucket, f"{self._s.curated_prefix}_manifests/")
        }
        report = ReconcileReport()
        for obj in self._store.list_objects(bucket, self._s.raw_prefix):
            if not lake.is_raw_key(obj.key, self._s.raw_prefix):
                continue
            if obj.key.startswith(self._s.feedback_raw_prefix):
                report.skipped_feedback += 1
                continue
            report.listed += 1
            if self._is_ingested(obj, manifests.get(self._ingester.manifest_key(obj.key))):
                report.up_to_date += 1
                continue
            if obj.last_modified > cutoff:
                report.recent += 1
                continue
            if time_left_s is not None and time_left_s() < reserve_s:
                report.remaining += 1
                continue
            try:
                self._ingester.ingest_now(lake.SourceObject(bucket, obj.key, obj.etag, size=obj.size))
            except (RetryableError, ObjectNotFoundError) as exc:
                report.failed += 1
                report.failures.append({"key": obj.key, "error": type(exc).__name__, "detail": str(exc)})
                continue
            report.ingested += 1
            report.ingested_keys.append(obj.key)
        logger.info("reconciled the raw zone", extra=report.as_dict())
        return report.as_dict()

    def _is_ingested(self, obj: ListedObject, manifest_written: datetime | None) -> bool:
        if manifest_written is None:
            return False
        if manifest_written - obj.last_modified > timedelta(seconds=MAX_INGEST_SECONDS):
            return True  # that ingest started after this version landed, so it read this version
        return self._ingester.ingested_etag(obj.key) == obj.etag
