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
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reviewsense.target import free_port, local_client
from tests.conftest import DATASET, ROOT

pytestmark = pytest.mark.localcloud
BUCKET = "reviewsense-lake"


class Cloud:
    def __init__(self, home: Path, port: int, **env: str) -> None:
        self.home = home
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "REVIEWSENSE_HOME": str(home),
            "PYTHONFAULTHANDLER": "1",
            "REVIEWSENSE_RETRAIN_THRESHOLD": "1000000000",  # ingestion tests start no training run
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        log = (self.home / "test.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reviewsense.cli", "local", "up", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._endpoint_pid() == self.proc.pid and self.cli("local", "status").returncode == 0:
                return
            assert self.proc.poll() is None, (self.home / "test.log").read_text()
            time.sleep(0.3)
        raise AssertionError("local cloud did not start")

    def _endpoint_pid(self) -> int | None:
        """The pid in endpoint.json (after a kill -9 it is a dead process's until the new one starts)."""
        try:
            return int(json.loads((self.home / "endpoint.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def down(self) -> None:
        assert self.cli("local", "down").returncode == 0
        assert self.proc is not None
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to the log
            self.proc.wait(timeout=10)
            raise AssertionError((self.home / "test.log").read_text()[-8000:]) from None

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, only what is already on disk survives."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reviewsense.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def query(self, sql: str) -> list[dict[str, Any]]:
        out = self.cli("query", sql, "--json")
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    def client(self, service: str) -> Any:
        return local_client(self.endpoint, service)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = Cloud(tmp_path_factory.mktemp("localcloud"), free_port())
    c.up()
    yield c
    if c.proc is not None and c.proc.poll() is None:
        c.proc.terminate()
        c.proc.wait(timeout=60)


def wait_until(predicate: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def invocations(cloud: Cloud) -> list[dict[str, Any]]:
    path = cloud.home / "logs" / "lambda.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def manifest_etag(cloud: Cloud, key: str) -> str | None:
    from chalicelib.domain import lake

    try:
        body = (
            cloud.client("s3")
            .get_object(Bucket=BUCKET, Key=lake.manifest_key("curated/", lake.source_digest(BUCKET, key)))[
                "Body"
            ]
            .read()
        )
    except Exception:
        return None
    return str(json.loads(body)["etag"])


def upload_and_wait(cloud: Cloud, key: str, body: bytes) -> None:
    etag = cloud.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    wait_until(lambda: manifest_etag(cloud, key) == etag, timeout_s=120)


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
    started = time.perf_counter()
    upload_and_wait(cloud, "raw/reviews/womens_clothing_ecommerce_reviews.csv.gz", data)
    assert time.perf_counter() - started < 120
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
    before = cloud.query("SELECT channel, count(*) AS n FROM reviews GROUP BY channel ORDER BY channel")
    assert before
    cloud.down()
    cloud.up()
    after = cloud.query("SELECT channel, count(*) AS n FROM reviews GROUP BY channel ORDER BY channel")
    assert after == before
