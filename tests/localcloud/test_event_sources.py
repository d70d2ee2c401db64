"""SQS event source mappings and IAM-authorised routes on the local cloud, as Lambda and API Gateway run them.

One in-process local cloud serves the small app of ``tests/localcloud/sqsapp.py`` (two SQS handlers,
an IAM route, an open route). Messages go in with plain boto3 and come out in the handler exactly as
Lambda's SQS poller delivers them: one delivery per receive, redelivered after the visibility timeout
while the function fails, moved to the ``-dlq`` queue after ``maxReceiveCount`` receives, partial
batch responses honoured. Signed requests reach the route with the caller's identity; unsigned,
wrongly signed and expired ones get API Gateway's 403.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import pytest

from chalicelib.config import Settings
from reviewsense.localcloud.provision import Provisioner
from reviewsense.signedhttp import local_api_url, post_json, signed_request
from tests.helpers.cloud import InProcessCloud, in_process_cloud
from tests.helpers.waiting import wait_until
from tests.localcloud import sqsapp

pytestmark = pytest.mark.localcloud
T = TypeVar("T")
MOTO_FAKE_SENT_TIMESTAMP = "1545082649183"  # what moto's own synchronous delivery puts in every record


class Cloud(InProcessCloud):
    """The in-process local cloud serving ``tests/localcloud/sqsapp.py``, with queue look-ups."""

    def queue_arn(self, name: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.url(name), AttributeNames=["QueueArn"]
        )
        return str(attributes["Attributes"]["QueueArn"])

    def drain_dlq(self, name: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(
                QueueUrl=self.url(f"{name}-dlq"), MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with in_process_cloud(
        tmp_path_factory.mktemp("event-sources"),
        bucket=None,
        persist=False,
        cls=Cloud,
        app_module="tests.localcloud.sqsapp",
        state_machines=False,
        queue_visibility_timeout_s=2,  # longer than the partial mapping's 1 s batching window
    ) as started:
        assert isinstance(started, Cloud)
        yield started


def deliveries(handler: str, message_id: str) -> list[dict[str, Any]]:
    """Every record of ``message_id`` the handler was invoked with, in order."""
    return [r for event in sqsapp.received(handler) for r in event["Records"] if r["messageId"] == message_id]


# -- SQS event source mappings ---------------------------------------------------------------------


def test_provisioning_creates_queue_dlq_and_the_mappings(cloud: Cloud) -> None:
    mappings = cloud.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    by_function = {m["FunctionArn"].rsplit(":", 1)[-1]: m for m in mappings}
    inbox, partial = by_function["reviewsense-local-inbox"], by_function["reviewsense-local-partial"]
    assert (inbox["EventSourceArn"], inbox["BatchSize"], inbox["State"]) == (
        cloud.queue_arn(sqsapp.INBOX),
        5,
        "Enabled",
    )
    assert inbox.get("FunctionResponseTypes", []) == []
    assert (partial["EventSourceArn"], partial["BatchSize"], partial["MaximumBatchingWindowInSeconds"]) == (
        cloud.queue_arn(sqsapp.PARTIAL),
        10,
        1,
    )
    assert partial["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    attributes = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.url(sqsapp.INBOX), AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": cloud.queue_arn(f"{sqsapp.INBOX}-dlq"),
        "maxReceiveCount": 3,
    }
    assert attributes["VisibilityTimeout"] == "2"  # this cloud's override; see the next test for AWS's rule


def test_the_queue_visibility_timeout_is_six_times_the_function_timeout_by_default(cloud: Cloud) -> None:
    from chalice.app import Chalice, SQSEvent

    app = Chalice(app_name="reviewsense")

    @app.on_sqs_message(queue="rs-test-default-visibility")
    def default_visibility(event: SQSEvent) -> None:
        return None

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    provisioned = Provisioner(session, Settings(queue_max_receive_count=5), cloud.endpoint).provision(
        app, None
    )
    attributes = cloud.client("sqs").get_queue_attributes(
        QueueUrl=provisioned.queues["rs-test-default-visibility"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == "1800"  # 6 x the functions' 300 s
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5
    # provisioning again changes nothing: still one mapping
    Provisioner(session, Settings(), cloud.endpoint).provision(app, None)
    arn = cloud.queue_arn("rs-test-default-visibility")
    assert (
        len(cloud.client("lambda").list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]) == 1
    )


def test_a_message_reaches_the_handler_in_lambdas_sqs_event_shape_and_is_deleted(cloud: Cloud) -> None:
    sqs = cloud.client("sqs")
    body = json.dumps({"text": "the zip broke", "n": 1})
    sent = sqs.send_message(
        QueueUrl=cloud.url(sqsapp.INBOX),
        MessageBody=body,
        MessageAttributes={
            "channel": {"DataType": "String", "StringValue": "chat"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    (record,) = wait_until(lambda: deliveries("inbox", sent["MessageId"]), what="delivery")
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest() == sent["MD5OfMessageBody"]
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        cloud.queue_arn(sqsapp.INBOX),
        "us-east-1",
    )
    attributes = record["attributes"]
    assert attributes["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(attributes)
    assert int(attributes["SentTimestamp"]) <= int(attributes["ApproximateFirstReceiveTimestamp"])
    assert record["messageAttributes"] == {
        "channel": {
            "stringValue": "chat",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    wait_until(lambda: cloud.waiting(sqsapp.INBOX) == 0, what="the message deleted")


def test_motos_own_synchronous_delivery_is_off_one_delivery_per_message(cloud: Cloud) -> None:
    sqs = cloud.client("sqs")
    url = cloud.url(sqsapp.INBOX)
    ids = [sqs.send_message(QueueUrl=url, MessageBody=f"one-{i}")["MessageId"] for i in range(12)]
    wait_until(lambda: all(deliveries("inbox", i) for i in ids), what="every message delivered")
    wait_until(lambda: cloud.waiting(sqsapp.INBOX) == 0, what="every message deleted")
    records = [deliveries("inbox", i) for i in ids]
    assert [len(r) for r in records] == [1] * 12
    assert all(r[0]["attributes"]["SentTimestamp"] != MOTO_FAKE_SENT_TIMESTAMP for r in records)
    assert all(len(event["Records"]) <= 5 for event in sqsapp.received("inbox"))  # the mapping's BatchSize


def test_a_failing_batch_is_redelivered_then_lands_in_the_dlq_nothing_lost(cloud: Cloud) -> None:
    sqs = cloud.client("sqs")
    sent = sqs.send_message(QueueUrl=cloud.url(sqsapp.INBOX), MessageBody="fail: cannot parse")
    dead = wait_until(lambda: cloud.drain_dlq(sqsapp.INBOX), what="the message in the DLQ")
    assert [(m["MessageId"], m["Body"]) for m in dead] == [(sent["MessageId"], "fail: cannot parse")]
    counts = [r["attributes"]["ApproximateReceiveCount"] for r in deliveries("inbox", sent["MessageId"])]
    assert counts == ["1", "2", "3"]  # maxReceiveCount receives, each one a delivery, then the DLQ
    assert cloud.waiting(sqsapp.INBOX) == 0
    history = [h for h in cloud.cloud.runtime.history if h.function == "reviewsense-local-inbox" and not h.ok]
    assert history and all(h.invocation_type == "RequestResponse" for h in history)  # no async retries


def test_a_partial_batch_response_deletes_only_the_successful_messages(cloud: Cloud) -> None:
    sqs = cloud.client("sqs")
    bodies = ["good-1", "bad-1", "good-2", "good-3"]
    response = sqs.send_message_batch(
        QueueUrl=cloud.url(sqsapp.PARTIAL),
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)],
    )
    ids = {e["Id"]: e["MessageId"] for e in response["Successful"]}
    bad = ids["1"]
    dead = wait_until(lambda: cloud.drain_dlq(sqsapp.PARTIAL), what="the failed item in the DLQ")
    assert [m["MessageId"] for m in dead] == [bad]
    assert [len(deliveries("partial", ids[k])) for k in ("0", "2", "3")] == [1, 1, 1]
    assert len(deliveries("partial", bad)) == 3
    assert cloud.waiting(sqsapp.PARTIAL) == 0


# -- API Gateway with IAM auth ---------------------------------------------------------------------


def session(key: str = "testing", secret: str = "testing") -> Any:
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")


def api_url(cloud: Cloud) -> str:
    info = json.loads((cloud.options.home / "endpoint.json").read_text())
    return local_api_url(info)


def raw(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read())


def test_the_api_url_is_advertised_under_the_moto_port(cloud: Cloud) -> None:
    assert api_url(cloud) == f"{cloud.endpoint}/_api/local/"


def test_a_signed_post_reaches_the_route_with_its_body_and_the_callers_identity(cloud: Cloud) -> None:
    status, answer = post_json(
        f"{api_url(cloud)}feedback", {"text": "late again", "n": 2}, session(), "us-east-1"
    )
    assert status == 200, answer
    assert answer["received"] == {"text": "late again", "n": 2}
    identity = answer["identity"]
    assert (identity["accessKey"], identity["accountId"]) == ("testing", "123456789012")
    assert identity["userArn"] == "arn:aws:sts::123456789012:user/moto"  # what sts get-caller-identity says
    assert identity["sourceIp"] == "127.0.0.1"
    assert any(h.function == "reviewsense-local" and h.ok for h in cloud.cloud.runtime.history)


def test_an_iam_users_own_key_is_accepted_and_named(cloud: Cloud) -> None:
    iam = cloud.client("iam")
    name = f"analyst-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    status, answer = post_json(
        f"{api_url(cloud)}feedback",
        {"ok": True},
        session(key["AccessKeyId"], key["SecretAccessKey"]),
        "us-east-1",
    )
    assert status == 200, answer
    assert answer["identity"]["userArn"] == f"arn:aws:iam::123456789012:user/{name}"
    assert answer["identity"]["accessKey"] == key["AccessKeyId"]
    status, answer = post_json(
        f"{api_url(cloud)}feedback", {}, session(key["AccessKeyId"], "wrong"), "us-east-1"
    )
    assert status == 403
    assert answer["message"].startswith("The request signature we calculated does not match")


def test_unsigned_wrongly_signed_unknown_and_expired_requests_are_refused(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{api_url(cloud)}feedback"
    unsigned = urllib.request.Request(
        url, data=b"{}", method="POST", headers={"Content-Type": "application/json"}
    )
    assert raw(unsigned) == (403, {"message": "Missing Authentication Token"})

    status, answer = post_json(url, {"a": 1}, session("testing", "not-the-secret"), "us-east-1")
    assert status == 403 and answer["message"].startswith(
        "The request signature we calculated does not match"
    )

    status, answer = post_json(url, {"a": 1}, session("AKIAUNKNOWN000000000", "x"), "us-east-1")
    assert (status, answer) == (403, {"message": "The security token included in the request is invalid."})

    tampered = signed_request(
        "POST", url, b'{"a": 1}', session(), "us-east-1", {"Content-Type": "application/json"}
    )
    tampered.data = b'{"a": 2}'
    status, answer = raw(tampered)
    assert status == 403 and answer["message"].startswith(
        "The request signature we calculated does not match"
    )

    wrong_region = signed_request("POST", url, b"{}", session(), "eu-west-1")
    status, answer = raw(wrong_region)
    assert status == 403 and "Credential should be scoped" in answer["message"]

    import botocore.auth

    signed_at = datetime.now(UTC) - timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at.replace(tzinfo=None))
    status, answer = post_json(url, {"a": 1}, session(), "us-east-1")
    assert status == 403 and answer["message"].startswith("Signature expired:")


def test_open_routes_need_no_signature_and_unknown_paths_are_missing_tokens(cloud: Cloud) -> None:
    status, answer = raw(urllib.request.Request(f"{api_url(cloud)}open/shoes?size=38&size=39"))
    assert status == 200
    assert (answer["name"], answer["query"]) == ("shoes", {"size": "39"})
    assert answer["identity"]["accessKey"] is None
    assert raw(urllib.request.Request(f"{api_url(cloud)}nowhere")) == (
        403,
        {"message": "Missing Authentication Token"},
    )
    get_feedback = urllib.request.Request(f"{api_url(cloud)}feedback")  # the route exists, GET does not
    assert raw(get_feedback) == (403, {"message": "Missing Authentication Token"})
    other_stage = urllib.request.Request(f"{cloud.endpoint}/_api/prod/open/shoes")
    assert raw(other_stage) == (403, {"message": "Missing Authentication Token"})
