"""Reconciliation against moto: raw objects whose event never arrived get ingested, once (issue 9)."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from typing import Any

import awswrangler as wr
from chalice.test import Client

import app
from chalicelib.config import Settings
from chalicelib.container import Container, get_container, reset_container
from reviewsense.localcloud.runtime import LambdaContext

BUCKET = "reviewsense-lake"


def suppress_events(aws: Any) -> None:
    """S3 stops telling EventBridge about uploads: the events are lost, as on a bad day."""
    aws.client("s3").put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})


def restore_events(aws: Any) -> None:
    aws.client("s3").put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


def manifest(aws: Any, key: str) -> dict[str, Any] | None:
    service = get_container().ingest_service
    try:
        body = aws.client("s3").get_object(Bucket=BUCKET, Key=service.manifest_key(key))["Body"].read()
    except aws.client("s3").exceptions.NoSuchKey:
        return None
    result: dict[str, Any] = json.loads(body)
    return result


def reviews(aws: Any) -> list[str]:
    frame = wr.s3.read_parquet(
        f"s3://{BUCKET}/curated/reviews/", dataset=True, path_suffix=".parquet", boto3_session=aws
    )
    return sorted(frame["text"])


def reconcile(**kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = get_container().reconcile_service.reconcile(grace_seconds=0, **kwargs)
    return result


def test_an_upload_whose_event_was_lost_is_ingested_by_reconcile_and_only_once(lake: Any) -> None:
    s3 = lake.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/app/delivered.csv", Body=b"text,rating\ndelivered,5\n")
    suppress_events(lake)
    etag = s3.put_object(Bucket=BUCKET, Key="raw/app/lost.csv", Body=b"text,rating\nlost then found,1\n")[
        "ETag"
    ]
    assert manifest(lake, "raw/app/lost.csv") is None, "nothing ingested it"
    assert reviews(lake) == ["delivered"]

    first = reconcile()
    assert (first["listed"], first["up_to_date"], first["ingested"], first["failed"]) == (2, 1, 1, 0)
    assert first["ingested_keys"] == ["raw/app/lost.csv"]
    assert manifest(lake, "raw/app/lost.csv")["etag"] == etag.strip('"')  # type: ignore[index]
    assert reviews(lake) == ["delivered", "lost then found"]

    second = reconcile()
    assert (second["listed"], second["up_to_date"], second["ingested"]) == (2, 2, 0)
    assert reviews(lake) == ["delivered", "lost then found"]


def test_a_re_upload_whose_event_was_lost_counts_as_new(lake: Any) -> None:
    s3 = lake.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/app/daily.csv", Body=b"text,rating\nmonday,5\n")
    suppress_events(lake)
    s3.put_object(Bucket=BUCKET, Key="raw/app/daily.csv", Body=b"text,rating\ntuesday,2\n")
    assert reconcile()["ingested_keys"] == ["raw/app/daily.csv"]
    assert reviews(lake) == ["tuesday"]


def test_objects_quarantined_whole_count_as_processed(lake: Any, settings: Settings) -> None:
    reset_container(Container(replace(settings, max_object_bytes=1 << 16), lake))
    s3 = lake.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/app/broken.csv.gz", Body=b"\x1f\x8b\x08not gzip")
    s3.put_object(Bucket=BUCKET, Key="raw/app/bomb.csv.gz", Body=gzip.compress(b"text\n" + b"x" * (1 << 20)))
    assert manifest(lake, "raw/app/broken.csv.gz")["reasons"] == {"unreadable_file": 1}  # type: ignore[index]
    assert manifest(lake, "raw/app/bomb.csv.gz")["reasons"] == {"object_too_large": 1}  # type: ignore[index]
    report = reconcile()
    assert (report["listed"], report["up_to_date"], report["ingested"]) == (2, 2, 0)


def test_recent_uploads_are_left_to_their_own_event(lake: Any) -> None:
    suppress_events(lake)
    lake.client("s3").put_object(Bucket=BUCKET, Key="raw/app/just-now.csv", Body=b"text\nhello\n")
    report = get_container().reconcile_service.reconcile(grace_seconds=900)
    assert (report["recent"], report["ingested"]) == (1, 0)
    assert manifest(lake, "raw/app/just-now.csv") is None


def test_reconcile_stops_starting_ingests_when_the_time_budget_runs_out(lake: Any) -> None:
    suppress_events(lake)
    for name in ("a", "b", "c"):
        lake.client("s3").put_object(Bucket=BUCKET, Key=f"raw/app/{name}.csv", Body=b"text\nhello\n")
    budget = iter([120.0, 30.0, 30.0])
    report = reconcile(time_left_s=lambda: next(budget))
    assert (report["ingested"], report["remaining"]) == (1, 2)
    assert reconcile()["ingested"] == 2


def test_the_scheduled_function_reconciles(lake: Any, settings: Settings) -> None:
    reset_container(Container(replace(settings, reconcile_grace_seconds=0), lake))
    suppress_events(lake)
    lake.client("s3").put_object(
        Bucket=BUCKET, Key="raw/app/scheduled.csv", Body=b"text\nfound on schedule\n"
    )
    restore_events(lake)
    with Client(app.app, stage_name="local") as client:
        event = client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
    # A context with the deployed function's 300 s (Chalice's test context has only 3 s).
    context = LambdaContext("reviewsense-local-reconcile_raw", "arn:aws:lambda:local", timeout_s=300)
    result = app.app.handler_map["reconcile_raw"](event, context)
    assert (result["ingested_keys"], result["remaining"]) == (["raw/app/scheduled.csv"], 0)
    assert reviews(lake) == ["found on schedule"]
