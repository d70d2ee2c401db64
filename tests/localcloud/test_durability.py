"""What the local cloud keeps across a crash (kill -9) and a restart, as AWS would (issue 9).

- S3: an object write that was acknowledged is on disk before the response leaves the server (the
  write-through journal), so it survives a kill -9 that comes before the next snapshot.
- Reconciliation: ``reviewsense ingest --reconcile`` ingests raw objects that no event reached.
- Step Functions: executions and their history survive ``local down`` / ``local up``; one that was
  running comes back ABORTED with the reason.

The cloud runs as a separate process with snapshots made rare (one an hour), so only the journal or
the snapshot written at shutdown can have kept what the tests find after the restart.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.cloud import BUCKET, Cloud, manifest_etag, running_cloud
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud

ROLE = "arn:aws:iam::123456789012:role/reviewsense-local-execution"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with running_cloud(
        tmp_path_factory.mktemp("durability"), REVIEWSENSE_LOCAL_SNAPSHOT_INTERVAL_S="3600"
    ) as c:
        yield c


def body_and_etag(s3: Any, key: str) -> tuple[bytes, str] | None:
    try:
        response = s3.get_object(Bucket=BUCKET, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    return response["Body"].read(), str(response["ETag"])


def test_acknowledged_s3_writes_survive_a_kill_9(cloud: Cloud) -> None:
    s3 = cloud.client("s3")
    put_body = b"text,rating\n" + b"".join(
        b"review %s,4\n" % os.urandom(8).hex().encode() for _ in range(9000)
    )
    put_etag = s3.put_object(Bucket=BUCKET, Key="raw/app/acknowledged.csv", Body=put_body)["ETag"]
    assert put_etag.strip('"') == hashlib.md5(put_body).hexdigest()

    s3.copy_object(
        Bucket=BUCKET,
        Key="exports/copy.csv",
        CopySource={"Bucket": BUCKET, "Key": "raw/app/acknowledged.csv"},
    )
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="exports/multipart.bin")["UploadId"]
    part_body = os.urandom(100_000)
    part = s3.upload_part(
        Bucket=BUCKET, Key="exports/multipart.bin", UploadId=upload, PartNumber=1, Body=part_body
    )
    multipart_etag = s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="exports/multipart.bin",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )["ETag"]
    s3.put_object(Bucket=BUCKET, Key="exports/deleted-one.txt", Body=b"gone")
    s3.delete_object(Bucket=BUCKET, Key="exports/deleted-one.txt")
    for name in ("a", "b"):
        s3.put_object(Bucket=BUCKET, Key=f"exports/batch-{name}.txt", Body=b"gone too")
    s3.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": "exports/batch-a.txt"}, {"Key": "exports/batch-b.txt"}]},
    )
    s3.put_object(Bucket=BUCKET, Key="exports/overwritten.txt", Body=b"first")
    last_etag = s3.put_object(Bucket=BUCKET, Key="exports/overwritten.txt", Body=b"second")["ETag"]

    cloud.kill()  # at once: the next snapshot is an hour away
    cloud.up()

    s3 = cloud.client("s3")
    assert body_and_etag(s3, "raw/app/acknowledged.csv") == (put_body, put_etag)
    assert body_and_etag(s3, "exports/copy.csv") == (put_body, put_etag)
    assert body_and_etag(s3, "exports/multipart.bin") == (part_body, multipart_etag)
    assert body_and_etag(s3, "exports/overwritten.txt") == (b"second", last_etag)
    for gone in ("exports/deleted-one.txt", "exports/batch-a.txt", "exports/batch-b.txt"):
        assert body_and_etag(s3, gone) is None, gone
    # The upload acknowledged just before the kill -9 is ingested too, by its event or by reconcile.
    assert reconcile(cloud)["failed"] == 0
    wait_until(lambda: manifest_etag(cloud, "raw/app/acknowledged.csv") == put_etag.strip('"'))


def reconcile(cloud: Cloud) -> dict[str, Any]:
    out = cloud.cli("ingest", "--reconcile", "--json")
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def test_reconcile_ingests_the_uploads_no_event_reached(cloud: Cloud) -> None:
    s3 = cloud.client("s3")
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})  # events lost
    missed = s3.put_object(Bucket=BUCKET, Key="raw/app/missed.csv", Body=b"text,rating\nnever announced,2\n")
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    assert manifest_etag(cloud, "raw/app/missed.csv") is None

    first = reconcile(cloud)
    assert "raw/app/missed.csv" in first["ingested_keys"]
    assert first["failed"] == 0
    assert manifest_etag(cloud, "raw/app/missed.csv") == missed["ETag"].strip('"')
    assert cloud.query("SELECT count(*) AS n FROM reviews WHERE text = 'never announced'") == [{"n": 1}]

    second = reconcile(cloud)
    assert (second["ingested"], second["up_to_date"]) == (0, second["listed"])
    table = cloud.cli("ingest", "--reconcile")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "listed",
        "up_to_date",
        "recent",
        "ingested",
        "failed",
        "remaining",
    ]


def test_the_journal_is_compacted_by_the_next_snapshot(cloud: Cloud) -> None:
    journal = cloud.home / "state" / "journal"
    etag = cloud.client("s3").put_object(Bucket=BUCKET, Key="exports/compacted.txt", Body=b"kept")["ETag"]
    assert any(journal.glob("s3-*.journal"))
    cloud.down()  # the final snapshot holds every journaled write
    assert not any(journal.glob("s3-*.journal"))
    cloud.up()
    assert body_and_etag(cloud.client("s3"), "exports/compacted.txt") == (b"kept", etag)


def machine(sfn: Any, name: str, seconds: int) -> str:
    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": {"Type": "Pass", "Result": {"planned": True}, "ResultPath": "$.plan", "Next": "Wait"},
            "Wait": {"Type": "Wait", "Seconds": seconds, "End": True},
        },
    }
    arn: str = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return arn


def pipeline_history(cloud: Cloud) -> str:
    out = cloud.cli("pipeline", "history")
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_executions_and_their_history_survive_a_restart(cloud: Cloud) -> None:
    sfn = cloud.client("stepfunctions")
    quick = machine(sfn, "durability-quick", 0)
    slow = machine(sfn, "durability-slow", 3600)
    done = sfn.start_execution(stateMachineArn=quick, name="run-1", input='{"n": 1}')["executionArn"]
    wait_until(lambda: sfn.describe_execution(executionArn=done)["status"] == "SUCCEEDED")
    running = sfn.start_execution(stateMachineArn=slow, name="run-2", input='{"n": 2}')["executionArn"]
    wait_until(lambda: len(sfn.get_execution_history(executionArn=running)["events"]) >= 4)
    before = sfn.describe_execution(executionArn=done)
    history_before = sfn.get_execution_history(executionArn=done)["events"]
    # A run of the training pipeline that fails in its first step (no training starts), so that
    # `reviewsense pipeline history`, the command of the bug report, has something to show.
    pipeline = next(
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"] == "reviewsense-local-training-pipeline"
    )
    failed = sfn.start_execution(
        stateMachineArn=pipeline, name="bad-request", input='{"hyperparameters": "not an object"}'
    )["executionArn"]
    wait_until(lambda: sfn.describe_execution(executionArn=failed)["status"] == "FAILED", timeout_s=120)
    assert "bad-request" in pipeline_history(cloud)

    cloud.down()
    cloud.up()

    sfn = cloud.client("stepfunctions")
    after = sfn.describe_execution(executionArn=done)
    for field in ("status", "name", "input", "output", "startDate", "stopDate", "stateMachineArn"):
        assert after[field] == before[field], field
    history_after = sfn.get_execution_history(executionArn=done)["events"]
    assert [(e["id"], e["type"]) for e in history_after] == [(e["id"], e["type"]) for e in history_before]
    assert history_after[-1]["type"] == "ExecutionSucceeded"
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=quick)["executions"]] == ["run-1"]

    assert "bad-request" in pipeline_history(cloud)
    assert sfn.describe_execution(executionArn=failed)["status"] == "FAILED"

    cut_off = sfn.describe_execution(executionArn=running)
    assert (cut_off["status"], cut_off["error"]) == ("ABORTED", "LocalCloud.Stopped")
    assert "not resumed" in cut_off["cause"]
    events = sfn.get_execution_history(executionArn=running)["events"]
    assert [e["type"] for e in events][:2] == ["ExecutionStarted", "PassStateEntered"]
    assert events[-1]["type"] == "ExecutionAborted"
    assert events[-1]["executionAbortedEventDetails"]["error"] == "LocalCloud.Stopped"
    assert (
        sfn.list_executions(stateMachineArn=slow, statusFilter="ABORTED")["executions"][0]["name"] == "run-2"
    )

    # The restored state machines still run new executions.
    again = sfn.start_execution(stateMachineArn=quick, name="run-3", input="{}")["executionArn"]
    wait_until(lambda: sfn.describe_execution(executionArn=again)["status"] == "SUCCEEDED")
    assert {e["name"] for e in sfn.list_executions(stateMachineArn=quick)["executions"]} == {"run-1", "run-3"}
