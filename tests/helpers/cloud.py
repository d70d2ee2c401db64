"""The local cloud for the tests: as a separate process (``Cloud``, driven like a user with the CLI and
boto3) or in this process (``InProcessCloud``, sharing moto's backends with the test), plus the lake
look-ups the end-to-end tests share.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from reviewsense.localcloud.server import LocalCloud, LocalCloudOptions
from reviewsense.target import free_port, local_client
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_until

BUCKET = "reviewsense-lake"


class Clients:
    """boto3 clients of a local cloud at ``endpoint``, and the SQS look-ups the tests share."""

    endpoint: str

    def client(self, service: str) -> Any:
        return local_client(self.endpoint, service)

    def url(self, name: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def waiting(self, name: str) -> int:
        """Messages on queue ``name``, visible or in flight."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.url(name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Receive and delete every visible message of the queue at ``url`` (with all attributes)."""
        sqs, out = self.client("sqs"), []
        while got := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", []):
            for m in got:
                out.append(m)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out


class Cloud(Clients):
    """``reviewsense local up`` as a child process on its own home and port."""

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

    def up(self, *options: str, timeout_s: float = 60) -> None:
        """Start it with ``options`` of ``local up`` added; wait until ``local status`` answers."""
        log = (self.home / "test.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reviewsense.cli", "local", "up", *options, "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc = self.proc

        def started() -> bool:
            assert proc.poll() is None, (self.home / "test.log").read_text()
            return self._endpoint_pid() == proc.pid and self.cli("local", "status").returncode == 0

        wait_until(started, timeout_s=timeout_s, what="local cloud started", interval_s=0.3)

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

    def terminate(self) -> None:
        """Stop the process if it still runs (the end of a fixture)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

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


@contextmanager
def running_cloud(
    home: Path, *options: str, cls: type[Cloud] = Cloud, timeout_s: float = 60, **env: str
) -> Iterator[Cloud]:
    """A started ``Cloud`` (or ``cls``) on a free port with ``options`` of ``local up`` and ``env``,
    terminated at the end (the body of a module fixture)."""
    cloud = cls(home, free_port(), **env)
    cloud.up(*options, timeout_s=timeout_s)
    try:
        yield cloud
    finally:
        cloud.terminate()


class InProcessCloud(Clients):
    """The local cloud in this process (restartable: ``restart`` keeps the home, takes a new port)."""

    def __init__(self, home: Path, persist: bool = True, **options: Any) -> None:
        self.options = LocalCloudOptions(
            home=home, project_root=ROOT, port=free_port(), persist=persist, **options
        )
        self.cloud = LocalCloud(self.options)
        self.endpoint = self.cloud.endpoint

    def restart(self) -> None:
        """Stop, then start a new local cloud on the same home (a new port: the old socket stays bound)."""
        self.cloud.stop()
        self.options = dataclasses.replace(self.options, port=free_port())
        self.cloud = LocalCloud(self.options)
        self.endpoint = self.cloud.endpoint
        self.cloud.start()


@contextmanager
def in_process_cloud(
    home: Path,
    bucket: str | None,
    persist: bool = True,
    cls: type[InProcessCloud] = InProcessCloud,
    **options: Any,
) -> Iterator[InProcessCloud]:
    """A started ``InProcessCloud`` (or ``cls``) with ``bucket`` created; stopped, and the environment and
    the cached settings/container it changed restored, at the end."""
    from chalicelib.config import get_settings
    from chalicelib.container import reset_container

    saved_env = dict(os.environ)
    cloud = cls(home, persist, **options)
    cloud.cloud.start()
    try:
        if bucket:
            cloud.client("s3").create_bucket(Bucket=bucket)
        yield cloud
    finally:
        cloud.cloud.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        get_settings.cache_clear()
        reset_container()


def invocations(cloud: Cloud) -> list[dict[str, Any]]:
    """The local cloud's Lambda invocation log, oldest first."""
    path = cloud.home / "logs" / "lambda.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def manifest_etag(cloud: Cloud, key: str) -> str | None:
    """The ETag of the raw object the curated manifest of ``key`` records; None before it is ingested."""
    from chalicelib.domain import lake

    manifest = lake.manifest_key("curated/", lake.source_digest(BUCKET, key))
    try:
        body = cloud.client("s3").get_object(Bucket=BUCKET, Key=manifest)["Body"].read()
    except ClientError as err:
        if err.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise
    return str(json.loads(body)["etag"])


def upload_and_wait(cloud: Cloud, key: str, body: bytes, timeout_s: float = 120) -> None:
    """Put ``key`` into the lake and wait until the ingest Lambda has curated exactly this version."""
    etag = cloud.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    wait_until(lambda: manifest_etag(cloud, key) == etag, timeout_s=timeout_s, what=f"{key} ingested")
