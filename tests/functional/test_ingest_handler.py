"""The ingest Lambda through Chalice's test client, against moto: lake, catalog, events, redelivery."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from dataclasses import replace
from typing import Any

import awswrangler as wr
from chalice.test import Client

import app
from chalicelib.adapters.events import EventBridgePublisher
from chalicelib.adapters.glue import GlueCatalog
from chalicelib.adapters.parquet import WranglerParquetWriter
from chalicelib.adapters.s3 import S3ObjectStore
from chalicelib.config import Settings
from chalicelib.container import Container, reset_container
from chalicelib.domain.lake import SourceObject
from chalicelib.domain.reviews import QuarantineReason
from chalicelib.services.ingest import IngestReport, IngestService
from tests.helpers.paths import EVENTS

EVENT = json.loads((EVENTS / "s3_object_created.json").read_text())
BUCKET = "reviewsense-lake"
KEY = "raw/email/mixed batch.jsonl"  # the event carries it URL-encoded, as S3 does

GOOD = [
    {"message_id": "m1", "body": "Love it", "rating": 5},
    {"message_id": "m2", "body": "Returned it, poor quality", "rating": 1},
    {"message_id": "m3", "body": "It is fine", "rating": 3},
    {"message_id": "m4", "body": "No rating given here"},
]
BAD_LINES = [
    '{"message_id": "b1", "body": "", "rating": 5}',  # missing_text
    '{"message_id": "b2", "body": "x", "rating": 11}',  # rating_out_of_range
    "{oops",  # unparsable_line
    '{"message_id": "b4", "subject": "no body"}',  # missing_required_columns
]


def mixed_file() -> bytes:
    lines = (
        [json.dumps(r) for r in GOOD[:2]] + BAD_LINES[:2] + [json.dumps(r) for r in GOOD[2:]] + BAD_LINES[2:]
    )
    return ("\n".join(lines) + "\n").encode()


def read_table(aws: Any, folder: str) -> Any:
    return wr.s3.read_parquet(
        f"s3://{BUCKET}/{folder}/", dataset=True, path_suffix=".parquet", boto3_session=aws
    )


def deliver(client: Client, key: str = KEY) -> dict[str, Any]:
    event = json.loads(json.dumps(EVENT))
    event["detail"]["object"]["key"] = key.replace(" ", "+")
    payload = client.lambda_.invoke("ingest", event).payload
    report = IngestReport(**payload).as_dict()  # the handler returns an ingest report, all of it
    assert payload == report
    return report


def domain_events(aws: Any) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="domain-events")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_mixed_file_keeps_good_rows_and_quarantines_bad_ones(lake: Any) -> None:
    lake.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=mixed_file())
    with Client(app.app, stage_name="local") as client:
        report = deliver(client)
    assert report["status"] == "ingested"
    assert (report["records"], report["curated"], report["quarantined"], report["labelled"]) == (8, 4, 4, 3)

    reviews = read_table(lake, "curated/reviews")
    assert sorted(reviews["review_id"]) == ["email-m1", "email-m2", "email-m3", "email-m4"]
    assert set(reviews["channel"].astype(str)) == {"email"}
    assert sorted(reviews["sentiment"].dropna().tolist()) == [-1, 0, 1]

    quarantine = read_table(lake, "quarantine/records")
    assert sorted(quarantine["reason"]) == sorted(
        [
            QuarantineReason.MISSING_TEXT,
            QuarantineReason.RATING_OUT_OF_RANGE,
            QuarantineReason.UNPARSABLE_LINE,
            QuarantineReason.MISSING_REQUIRED_COLUMNS,
        ]
    )
    assert set(quarantine["source_key"]) == {KEY}
    assert "{oops" in set(quarantine["raw_record"])
    assert len(reviews) + len(quarantine) == len(GOOD) + len(BAD_LINES)

    glue = lake.client("glue")
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="reviewsense")["TableList"]}
    assert set(tables) == {"reviews", "quarantine"}
    assert [k["Name"] for k in tables["reviews"]["PartitionKeys"]] == ["channel", "ingest_date"]
    partitions = glue.get_partitions(DatabaseName="reviewsense", TableName="reviews")["Partitions"]
    assert [p["Values"][0] for p in partitions] == ["email"]

    # The upload itself also reached the function through S3 -> EventBridge (run in-process here).
    events = domain_events(lake)
    assert events
    assert {e["detail-type"] for e in events} == {"Reviews Ingested"}
    assert {e["detail"]["labelled"] for e in events} == {3}


def test_delivering_the_same_event_three_times_leaves_one_copy(lake: Any) -> None:
    lake.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=mixed_file())
    with Client(app.app, stage_name="local") as client:
        reports = [deliver(client) for _ in range(3)]
    assert reports[0] == reports[1] == reports[2]
    assert len(read_table(lake, "curated/reviews")) == 4
    assert len(read_table(lake, "quarantine/records")) == 4


def test_redelivery_without_the_idempotency_record_still_writes_no_duplicates(lake: Any) -> None:
    lake.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=mixed_file())
    with Client(app.app, stage_name="local") as client:
        deliver(client)
        ddb = lake.client("dynamodb")
        for item in ddb.scan(TableName="reviewsense-local-idempotency")["Items"]:
            ddb.delete_item(TableName="reviewsense-local-idempotency", Key={"id": item["id"]})
        deliver(client)
    assert len(read_table(lake, "curated/reviews")) == 4


def test_re_uploading_a_key_replaces_its_rows(lake: Any) -> None:
    s3 = lake.client("s3")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=mixed_file())
    with Client(app.app, stage_name="local") as client:
        deliver(client)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=(json.dumps(GOOD[0]) + "\n").encode())
        report = deliver(client)
    assert (report["curated"], report["quarantined"]) == (1, 0)
    assert list(read_table(lake, "curated/reviews")["review_id"]) == ["email-m1"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/").get("Contents", [])]
    assert keys == [], "the quarantine rows of the replaced version are gone"


def test_unreadable_object_is_quarantined_whole(lake: Any) -> None:
    lake.client("s3").put_object(Bucket=BUCKET, Key="raw/app/broken.csv.gz", Body=b"\x1f\x8b\x08not gzip")
    with Client(app.app, stage_name="local") as client:
        report = deliver(client, "raw/app/broken.csv.gz")
    assert report["reasons"] == {"unreadable_file": 1}
    assert read_table(lake, "quarantine/records")["record_number"].tolist() == [0]


def test_objects_outside_the_raw_zone_are_ignored(lake: Any) -> None:
    lake.client("s3").put_object(Bucket=BUCKET, Key="curated/x.csv", Body=b"text\nhi\n")
    with Client(app.app, stage_name="local") as client:
        assert deliver(client, "curated/x.csv")["status"] == "skipped"


def test_kaggle_file_as_downloaded(lake: Any) -> None:
    header = (
        ",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,Positive Feedback Count,"
        "Division Name,Department Name,Class Name\n"
    )
    rows = "".join(
        f'{i},{1000 + i},{30 + i},Title {i},"Review, number {i}",{1 + i % 5},1,0,General,Tops,Knits\n'
        for i in range(50)
    )
    rows += "50,1050,40,,,5,1,0,General,Tops,Knits\n"
    lake.client("s3").put_object(
        Bucket=BUCKET, Key="raw/reviews/kaggle.csv.gz", Body=gzip.compress((header + rows).encode())
    )
    with Client(app.app, stage_name="local") as client:
        report = deliver(client, "raw/reviews/kaggle.csv.gz")
    assert (report["curated"], report["quarantined"], report["reasons"]) == (50, 1, {"missing_text": 1})


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A valid gzip CSV that is tiny on the wire and ``inflated_bytes`` long once decompressed."""
    return gzip.compress(b"text,rating\n" + b"x" * inflated_bytes, compresslevel=9)


def test_a_gzip_bomb_is_quarantined_whole_and_the_next_object_is_ingested(
    lake: Any, settings: Settings
) -> None:
    limit = 1 << 20
    reset_container(Container(replace(settings, max_object_bytes=limit), lake))
    bomb = gzip_bomb(32 << 20)
    assert len(bomb) < limit  # the compressed size alone would let it through
    s3 = lake.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/app/bomb.csv.gz", Body=bomb)
    s3.put_object(Bucket=BUCKET, Key="raw/app/good.csv.gz", Body=gzip.compress(b"text,rating\nlovely,5\n"))
    with Client(app.app, stage_name="local") as client:
        report = deliver(client, "raw/app/bomb.csv.gz")
        good = deliver(client, "raw/app/good.csv.gz")
    assert (report["status"], report["curated"], report["reasons"]) == (
        "ingested",
        0,
        {"object_too_large": 1},
    )
    [row] = read_table(lake, "quarantine/records").to_dict("records")
    assert (row["source_key"], row["record_number"], row["reason"]) == (
        "raw/app/bomb.csv.gz",
        0,
        "object_too_large",
    )
    assert f"limit of {limit} bytes" in row["detail"]
    assert f"inflated to {limit + 1} bytes" in row["detail"]
    assert (good["curated"], good["quarantined"]) == (1, 0)
    assert list(read_table(lake, "curated/reviews")["text"]) == ["lovely"]


def test_ingesting_a_gzip_bomb_keeps_memory_bounded_by_the_limit(lake: Any, settings: Settings) -> None:
    limit = 4 << 20
    inflated = 256 << 20
    limited = replace(settings, max_object_bytes=limit)
    s3 = lake.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/app/bomb.csv.gz", Body=gzip_bomb(inflated))
    service = IngestService(
        limited,
        S3ObjectStore(s3),
        WranglerParquetWriter(lake),
        GlueCatalog(lake.client("glue")),
        EventBridgePublisher(lake.client("events"), limited.event_bus, limited.event_source),
    )
    tracemalloc.start()
    try:
        report = service.ingest(SourceObject(BUCKET, "raw/app/bomb.csv.gz"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report["reasons"] == {"object_too_large": 1}
    # A few copies of the limit at most (bytearray growth, one S3 chunk), never the inflated size.
    assert peak < 4 * limit, f"peak {peak / 2**20:.1f} MiB"
