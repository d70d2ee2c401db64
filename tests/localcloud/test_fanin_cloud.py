"""The feedback fan-in end to end on the local cloud: three entry points, one served model, subscribers.

The real app is provisioned and run as on AWS: ``POST /feedback`` signed with SigV4, a file uploaded
under ``raw/feedback/app/`` (S3 -> EventBridge -> ``feedback_upload``) and a message sent straight to
the queue all reach ``feedback_fanin`` through the SQS poller, which scores them on a real endpoint
serving ``training/inference.py`` with a small linear model (``reviewsense/localmodel.py``, no training), and
the alerts reach an SQS subscriber filtered on ``channel``. With the endpoint gone the messages reach
the DLQ after the queue's receives, and replayed once it is back they are scored once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.config import Settings
from reviewsense import localmodel
from reviewsense.signedhttp import local_api_url, post_json
from tests.helpers.cloud import InProcessCloud, in_process_cloud
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud


class Cloud(InProcessCloud):
    """The real app on the local cloud, with the fan-in's queues, table and subscribers at hand."""

    settings = Settings()

    def items(self) -> list[dict[str, Any]]:
        from chalicelib.adapters.feedback_store import from_item

        found = self.client("dynamodb").scan(TableName=self.settings.feedback_table)["Items"]
        return [i for i in (from_item(x) for x in found) if "#" not in i["id"]]

    def complete(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if i.get("completed_at")]


def serve(cloud: Cloud) -> None:
    """The app's endpoint, serving the linear model through the real serving handler."""
    localmodel.serve(cloud.endpoint, cloud.settings, ROOT, "fanin-test")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    from chalicelib.container import get_container

    home = tmp_path_factory.mktemp("fanin-cloud")
    options = {"state_machines": False, "queue_visibility_timeout_s": 2}
    with in_process_cloud(home, None, persist=False, cls=Cloud, **options) as started:
        assert isinstance(started, Cloud)
        c = started
        c.settings = Settings.from_env()
        # Each test's autouse fixture unsets AWS_ENDPOINT_URL: build the handlers' settings while it is set.
        assert get_container().settings.endpoint_url == c.endpoint
        serve(c)
        for name, policy in (("alerts-all", None), ("alerts-chat", {"channel": ["chat"]})):
            localmodel.subscribe(c.endpoint, c.settings.alerts_topic_arn, name, policy)
        yield c


@pytest.fixture(autouse=True)
def _local_endpoint(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conftest unsets ``AWS_ENDPOINT_URL`` for each test; the fan-in's awswrangler calls need it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint)


def alerts(cloud: Cloud, queue: str) -> list[dict[str, str]]:
    out = []
    for m in cloud.drain(cloud.url(queue)):
        note = json.loads(m["Body"])
        out.append({k: v["Value"] for k, v in note["MessageAttributes"].items()})
    return out


CHAT = {
    "channel": "chat",
    "message_id": "crm-1",
    "body": {
        "conversation_id": "c-1",
        "customer_id": "CUST-1",
        "product_id": "1078",
        "turns": [{"speaker": "customer", "text": "terrible service, write to ann@example.com"}],
    },
}


def test_three_entry_points_one_fan_in_a_filtered_subscriber_and_no_second_alert(cloud: Cloud) -> None:
    s = cloud.settings
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    api = local_api_url(json.loads((cloud.options.home / "endpoint.json").read_text()))
    status, answer = post_json(f"{api}feedback", CHAT, session, s.region)
    assert status == 202 and answer["channel"] == "chat"
    reviews = [
        {"review_id": "r-1", "user_id": "u-1", "product_id": "862", "rating": 1, "body": "terrible zip"},
        {"review_id": "r-2", "user_id": "u-2", "product_id": "862", "rating": 5, "body": "great fit"},
    ]
    cloud.client("s3").put_object(
        Bucket=s.lake_bucket, Key="raw/feedback/app/batch.json", Body=json.dumps(reviews).encode()
    )
    post = {"post_id": "p-1", "author": "@fan", "text": "great shop"}
    cloud.client("sqs").send_message(
        QueueUrl=cloud.url(s.feedback_queue), MessageBody=json.dumps({"channel": "social", "body": [post]})
    )

    wait_until(lambda: len(cloud.complete()) == 4, what="4 scored")
    done = cloud.complete()
    labels = sorted((i["channel"], i["label"]) for i in done)
    assert labels == [("app", "negative"), ("app", "positive"), ("chat", "negative"), ("social", "positive")]
    assert "ann@example.com" not in json.dumps(done)
    wait_until(lambda: cloud.waiting("alerts-all") >= 2, what="two alerts")
    assert sorted(a["channel"] for a in alerts(cloud, "alerts-all")) == ["app", "chat"]
    assert [(a["channel"], a["product_id"]) for a in alerts(cloud, "alerts-chat")] == [("chat", "1078")]
    table = cloud.client("glue").get_table(DatabaseName=s.glue_database, Name="predictions")["Table"]
    assert table["PartitionKeys"] == [
        {"Name": "channel", "Type": "string"},
        {"Name": "ingest_date", "Type": "string"},
    ]
    assert (
        cloud.client("s3").list_objects_v2(Bucket=s.lake_bucket, Prefix="curated/reviews/").get("KeyCount")
        == 0
    )

    # The sender retries: the same feedback again is a duplicate, scored and alerted once.
    assert post_json(f"{api}feedback", CHAT, session, s.region)[0] == 202
    wait_until(lambda: cloud.waiting(s.feedback_queue) == 0, what="the resend handled")
    assert len(cloud.items()) == 4
    assert alerts(cloud, "alerts-all") == []


def test_with_the_endpoint_gone_messages_reach_the_dlq_and_replay_scores_them_once(cloud: Cloud) -> None:
    s = cloud.settings
    sm, sqs = cloud.client("sagemaker"), cloud.client("sqs")
    sm.delete_endpoint(EndpointName=s.endpoint_name)
    before = len(cloud.items())
    body = json.dumps(
        {"channel": "social", "body": [{"post_id": "p-dlq", "author": "@x", "text": "terrible"}]}
    )
    sqs.send_message(QueueUrl=cloud.url(s.feedback_queue), MessageBody=body)

    wait_until(lambda: cloud.waiting(s.feedback_dlq) == 1, what="the message in the DLQ")
    assert cloud.waiting(s.feedback_queue) == 0 and len(cloud.items()) == before
    (dead,) = cloud.client("sqs").receive_message(QueueUrl=cloud.url(s.feedback_dlq), VisibilityTimeout=0)[
        "Messages"
    ]
    # The last error is kept for the operator under the message's id (SQS keeps the id in the DLQ).
    error = cloud.client("dynamodb").get_item(
        TableName=s.feedback_table, Key={"id": {"S": f"error#{dead['MessageId']}"}}
    )["Item"]
    assert error["error"]["S"].endswith(f"Endpoint {s.endpoint_name} of account 123456789012 not found.")
    assert error["receive_count"]["N"] == str(s.queue_max_receive_count)
    serve(cloud)
    for message in cloud.drain(cloud.url(s.feedback_dlq)):  # what `reviewsense feedback replay-dlq` does
        sqs.send_message(QueueUrl=cloud.url(s.feedback_queue), MessageBody=message["Body"])

    wait_until(lambda: len(cloud.complete()) == before + 1, what="the replayed message scored")
    assert [a["channel"] for a in alerts(cloud, "alerts-all")] == ["social"]
    assert cloud.waiting(s.feedback_dlq) == 0
