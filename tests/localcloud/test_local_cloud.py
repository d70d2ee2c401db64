"""End to end: the local cloud as a separate process, driven with plain boto3 and the CLI.

upload -> S3 EventBridge notification -> ingest Lambda (in the local cloud's process) -> curated
Parquet + Glue table -> ``reviewsense query`` returns the right counts; then redelivery, the
dead-letter queue and a restart with the state kept on disk.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator

import pytest

from tests.helpers.cloud import BUCKET, Cloud, invocations, running_cloud, upload_and_wait
from tests.helpers.paths import DATASET
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(tmp_path_factory.mktemp("localcloud")) as c:
        yield c


def test_upload_reaches_the_lake_and_query_counts_it(cloud: Cloud) -> None:
    lines = [json.dumps({"id": f"c{i}", "transcript": f"call {i}", "rating": 1 + i % 5}) for i in range(20)]
    lines += ['{"id": "bad", "transcript": "", "rating": 3}', "not json"]
    upload_and_wait(cloud, "raw/callcentre/batch-1.jsonl", "\n".join(lines).encode())
    rows = cloud.query(
        "SELECT channel, count(*) AS n, sum(CASE WHEN sentiment = -1 THEN 1 ELSE 0 END) AS neg "
        "FROM reviews WHERE channel = 'callcentre' GROUP BY channel"
    )
    assert rows == [{"channel": "callcentre", "n": 20, "neg": 8}]
    reasons = cloud.query(
        "SELECT reason, count(*) AS n FROM reviewsense.quarantine "
        "WHERE channel = 'callcentre' GROUP BY reason ORDER BY reason"
    )
    assert reasons == [{"reason": "missing_text", "n": 1}, {"reason": "unparsable_line", "n": 1}]


@pytest.mark.skipif(not DATASET.exists(), reason="the shared dataset is not beside the checkout")
def test_the_kaggle_dataset_ingests_completely(cloud: Cloud) -> None:
    data = DATASET.read_bytes()
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(data).decode("utf-8"))))
    with_text = sum(1 for r in rows if (r["Review Text"] or "").strip())
    # How long this takes is reported by `make bench-ingest`, not checked here.
    upload_and_wait(cloud, "raw/reviews/womens_clothing_ecommerce_reviews.csv.gz", data, timeout_s=600)
    counts = cloud.query(
        "SELECT (SELECT count(*) FROM reviews WHERE channel = 'reviews') AS curated, "
        "(SELECT count(*) FROM quarantine WHERE channel = 'reviews') AS quarantined"
    )
    assert counts == [{"curated": with_text, "quarantined": len(rows) - with_text}]


def test_the_same_event_three_times_leaves_one_copy(cloud: Cloud) -> None:
    key = "raw/app/redelivered.csv"
    upload_and_wait(cloud, key, b"text,rating\nlovely,5\nawful,1\n")
    head = cloud.client("s3").head_object(Bucket=BUCKET, Key=key)
    before = len(invocations(cloud))
    detail = {"bucket": {"name": BUCKET}, "object": {"key": key, "etag": head["ETag"].strip('"'), "size": 10}}
    events = cloud.client("events")
    for _ in range(3):
        events.put_events(
            Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}]
        )
    wait_until(lambda: len(invocations(cloud)) >= before + 3)
    rows = cloud.query(
        "SELECT review_id, count(*) AS n FROM reviews WHERE channel = 'app' GROUP BY review_id"
    )
    assert sorted(r["n"] for r in rows) == [1, 1]


def test_a_failing_event_is_retried_then_dead_lettered(cloud: Cloud) -> None:
    detail = {"bucket": {"name": BUCKET}, "object": {"key": "raw/app/never-uploaded.csv", "etag": "x"}}
    cloud.client("events").put_events(
        Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}]
    )
    sqs = cloud.client("sqs")
    url = sqs.get_queue_url(QueueName="reviewsense-local-ingest-dlq")["QueueUrl"]
    messages = wait_until(lambda: sqs.receive_message(QueueUrl=url).get("Messages"), timeout_s=30)
    body = json.loads(messages[0]["Body"])
    assert body["attempts"] == 3
    assert body["error"]["errorType"] == "ObjectNotFoundError"
    assert body["event"]["detail"]["object"]["key"] == "raw/app/never-uploaded.csv"


def test_the_lake_survives_a_restart(cloud: Cloud) -> None:
    upload_and_wait(cloud, "raw/restart/kept.csv", b"text,rating\nstill here,4\ngone soon,1\nmeh,3\n")
    before = cloud.query("SELECT channel, count(*) AS n FROM reviews GROUP BY channel ORDER BY channel")
    assert {"channel": "restart", "n": 3} in before
    cloud.down()
    cloud.up()
    after = cloud.query("SELECT channel, count(*) AS n FROM reviews GROUP BY channel ORDER BY channel")
    assert after == before
