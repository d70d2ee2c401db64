"""The reconciliation rules, over an in-memory lake (the moto-backed tests are in tests/functional)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.s3 import ListedObject
from chalicelib.config import Settings
from chalicelib.domain import lake
from chalicelib.errors import DependencyUnavailableError
from chalicelib.services.reconcile import MAX_INGEST_SECONDS, ReconcileService

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SETTINGS = Settings()


class Lake:
    """Listings and manifests in memory, and an ingester that records what it was asked to do."""

    def __init__(self) -> None:
        self.objects: dict[str, ListedObject] = {}
        self.manifests: dict[str, tuple[str, datetime]] = {}  # raw key -> (etag, written at)
        self.manifest_reads: list[str] = []
        self.ingested: list[str] = []
        self.failing: dict[str, Exception] = {}

    def upload(self, key: str, etag: str, at: datetime) -> None:
        self.objects[key] = ListedObject(key, etag, 10, at)

    # -- the ObjectStore calls reconciliation makes ---------------------------------------------------

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ListedObject]:
        if prefix == SETTINGS.raw_prefix:
            yield from self.objects.values()
        else:
            for key, (etag, at) in self.manifests.items():
                yield ListedObject(self.manifest_key(key), etag, 10, at)

    # -- the ingester -----------------------------------------------------------------------------

    def manifest_key(self, key: str) -> str:
        return lake.manifest_key(SETTINGS.curated_prefix, lake.source_digest(SETTINGS.lake_bucket, key))

    def ingested_etag(self, key: str) -> str | None:
        self.manifest_reads.append(key)
        return self.manifests[key][0] if key in self.manifests else None

    def ingest_now(self, source: lake.SourceObject) -> dict[str, Any]:
        if source.key in self.failing:
            raise self.failing[source.key]
        self.ingested.append(source.key)
        self.manifests[source.key] = (source.etag, NOW)
        return {"status": "ingested"}


def reconcile(store: Lake, **kwargs: Any) -> dict[str, Any]:
    return ReconcileService(SETTINGS, store, store, clock=lambda: NOW).reconcile(  # type: ignore[arg-type]
        **kwargs
    )


def test_only_versions_without_a_matching_manifest_are_ingested() -> None:
    store = Lake()
    old = NOW - timedelta(hours=2)
    store.upload("raw/app/done.csv", "e1", old)
    store.manifests["raw/app/done.csv"] = ("e1", old + timedelta(seconds=5))
    store.upload("raw/app/reuploaded.csv", "e2-new", old)
    store.manifests["raw/app/reuploaded.csv"] = ("e2-old", old + timedelta(seconds=5))
    store.upload("raw/app/never.csv", "e3", old)
    store.upload("raw/app/folder/", "", old)  # a folder marker is not an object to ingest
    report = reconcile(store, grace_seconds=60)
    assert sorted(store.ingested) == ["raw/app/never.csv", "raw/app/reuploaded.csv"]
    assert (report["listed"], report["up_to_date"], report["ingested"]) == (3, 1, 2)
    assert reconcile(store, grace_seconds=60)["ingested"] == 0


def test_a_manifest_written_long_after_the_upload_is_trusted_without_reading_it() -> None:
    store = Lake()
    landed = NOW - timedelta(days=3)
    store.upload("raw/app/a.csv", "e1", landed)
    store.manifests["raw/app/a.csv"] = ("e1", landed + timedelta(seconds=MAX_INGEST_SECONDS + 1))
    store.upload("raw/app/b.csv", "e2", landed)
    store.manifests["raw/app/b.csv"] = ("e2", landed + timedelta(seconds=30))
    assert reconcile(store)["up_to_date"] == 2
    assert store.manifest_reads == ["raw/app/b.csv"]  # only the one an older ingest could have written


def test_uploads_within_the_grace_period_are_left_to_their_event() -> None:
    store = Lake()
    store.upload("raw/app/new.csv", "e1", NOW - timedelta(seconds=30))
    assert reconcile(store, grace_seconds=900)["recent"] == 1
    assert store.ingested == []
    assert reconcile(store, grace_seconds=0)["ingested"] == 1


def test_a_retryable_failure_is_reported_and_the_others_go_on() -> None:
    store = Lake()
    for name in ("a", "b"):
        store.upload(f"raw/app/{name}.csv", name, NOW - timedelta(hours=1))
    store.failing["raw/app/a.csv"] = DependencyUnavailableError("SlowDown")
    report = reconcile(store)
    assert (report["failed"], report["ingested_keys"]) == (1, ["raw/app/b.csv"])
    assert report["failures"][0]["error"] == "DependencyUnavailableError"


def test_any_other_error_stops_the_run_loudly() -> None:
    store = Lake()
    store.upload("raw/app/a.csv", "a", NOW - timedelta(hours=1))
    store.failing["raw/app/a.csv"] = PermissionError("AccessDenied")
    with pytest.raises(PermissionError):
        reconcile(store)


def test_feedback_files_are_left_to_the_fan_in() -> None:
    store = Lake()
    old = NOW - timedelta(hours=2)
    store.upload("raw/feedback/email/a.eml", "f1", old)
    store.upload("raw/feedback/app/b.json", "f2", old)
    store.upload("raw/app/c.csv", "c1", old)
    report = reconcile(store)
    assert store.ingested == ["raw/app/c.csv"]
    assert (report["listed"], report["skipped_feedback"], report["ingested"]) == (1, 2, 1)
