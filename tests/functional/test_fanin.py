"""The feedback fan-in through its Lambda handler, against moto: queue, table, topic, lake, catalog.

moto cannot run a model, so the endpoint is replaced at the adapter boundary: ``FakeEndpoint`` has the
scorer's one method and answers by keywords. Everything else is the product code over moto: messages
are sent to and received from the real (moto) queue with their receipt handles, the handler's
``batchItemFailures`` decide what the small poller below deletes and what comes back, and moto moves
a message to the DLQ after the queue's maxReceiveCount, as SQS does.

Why one module of about 580 lines: every test drives the same small cloud (``Cloud``: queue, DLQ,
table, topic, two subscribers, the poller) and the same endpoint double; the first half is that
harness, the rest one test per guarantee of the fan-in (scoring, idempotency, bursts, failures,
entry points).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

import app
from chalicelib.adapters.runtime import Prediction
from chalicelib.config import Settings
from chalicelib.container import Container, reset_container
from chalicelib.domain.alerts import burst_window
from chalicelib.errors import DependencyUnavailableError

EMAIL_NEGATIVE = (
    "From: Ann Smith <ann.smith@example.com>\r\n"
    "To: care@shop.example\r\n"
    "Subject: Terrible dress\r\n"
    "X-Product-Id: 1078\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "The dress is terrible, it ripped after one wash. Call me on +44 20 7946 0958.\r\n"
)
MAX_RECEIVE = 2


def app_review(review_id: str, text: str, product: str = "862", rating: int = 1) -> dict[str, Any]:
    return {"review_id": review_id, "user_id": f"u-{review_id}", "product_id": product, "rating": rating,
            "title": "Review", "body": text}  # fmt: skip


def social_post(post_id: str, text: str) -> dict[str, Any]:
    return {"post_id": post_id, "author": "@someone", "text": text}


class FakeEndpoint:
    """The scorer port: 'terrible' is a sure negative, 'unsure' a low-confidence neutral, else positive."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []  # the calls that answered
        self.failing = False
        self.failures = 0

    def score(self, batch_id: str, instances: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        if self.failing:
            self.failures += 1
            raise DependencyUnavailableError(
                "reviewsense-local-sentiment: ThrottlingException after 4 attempts"
            )
        self.calls.append((batch_id, [dict(i) for i in instances]))
        out = []
        for instance in instances:
            text = str(instance["text"]).lower()
            if "terrible" in text:
                probabilities = {"negative": 0.95, "neutral": 0.03, "positive": 0.02}
            elif "unsure" in text:
                probabilities = {"negative": 0.3, "neutral": 0.5, "positive": 0.2}
            else:
                probabilities = {"negative": 0.02, "neutral": 0.08, "positive": 0.9}
            label = max(probabilities, key=lambda k: probabilities[k])
            out.append(Prediction(label, probabilities[label], probabilities, "champion"))
        return out

    @property
    def scored_ids(self) -> list[str]:
        return [i["feedback_id"] for _, instances in self.calls for i in instances]


class Cloud:
    """The fan-in's resources in moto, a filtered and an unfiltered alert subscriber, and a poller."""

    def __init__(self, session: Any, settings: Settings) -> None:
        self.session = session
        self.sqs = session.client("sqs")
        self.s3 = session.client("s3")
        self.ddb = session.client("dynamodb")
        sns = session.client("sns")
        if settings.lake_bucket not in {b["Name"] for b in self.s3.list_buckets()["Buckets"]}:
            self.s3.create_bucket(Bucket=settings.lake_bucket)
            session.client("glue").create_database(DatabaseInput={"Name": settings.glue_database})
        tables = self.ddb.list_tables()["TableNames"]
        if settings.feedback_table not in tables:  # the local cloud's provisioning may have made it
            self.ddb.create_table(
                TableName=settings.feedback_table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        self.dlq = self.queue_named(settings.feedback_dlq)
        redrive = {"deadLetterTargetArn": self.arn(self.dlq), "maxReceiveCount": str(MAX_RECEIVE)}
        self.queue = self.queue_named(settings.feedback_queue, {"RedrivePolicy": json.dumps(redrive)})
        self.review = self.queue_named(settings.review_queue)
        topic = sns.create_topic(Name="reviewsense-local-alerts")["TopicArn"]
        self.topic = topic
        self.all_alerts = self.sqs.create_queue(QueueName="subscriber-all")["QueueUrl"]
        self.chat_alerts = self.sqs.create_queue(QueueName="subscriber-chat")["QueueUrl"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=self.arn(self.all_alerts))
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=self.arn(self.chat_alerts),
            Attributes={"FilterPolicy": json.dumps({"channel": ["chat"]})},
        )

    def queue_named(self, name: str, attributes: dict[str, str] | None = None) -> str:
        """The queue, created or (made by provisioning already) given these attributes."""
        url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        if attributes:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url

    def arn(self, url: str) -> str:
        return str(
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    def send(self, message: Any) -> str:
        body = message if isinstance(message, str) else json.dumps(message)
        return str(self.sqs.send_message(QueueUrl=self.queue, MessageBody=body)["MessageId"])

    def poll(self) -> dict[str, Any] | None:
        """One batch as Lambda's poller delivers it: delete the successes, release the failures."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return None
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn(self.queue),
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }
        result: dict[str, Any] = app.feedback_fanin(event, None)
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:  # the visibility timeout, run out at once
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        return result

    def drain(self, url: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(m)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def alerts(self, url: str) -> list[dict[str, Any]]:
        """What a subscriber queue got: the SNS notifications' messages and attributes."""
        out = []
        for m in self.drain(url):
            note = json.loads(m["Body"])
            attributes = {k: v["Value"] for k, v in note.get("MessageAttributes", {}).items()}
            out.append({"message": json.loads(note["Message"]), "attributes": attributes})
        return out

    def item(self, feedback_id: str) -> dict[str, Any] | None:
        from chalicelib.adapters.feedback_store import from_item

        got = self.ddb.get_item(TableName=app_settings().feedback_table, Key={"id": {"S": feedback_id}})
        return from_item(got["Item"]) if "Item" in got else None

    def feedback_items(self) -> list[dict[str, Any]]:
        from chalicelib.adapters.feedback_store import from_item

        items = [from_item(i) for i in self.ddb.scan(TableName=app_settings().feedback_table)["Items"]]
        return [i for i in items if "#" not in i["id"]]

    def keys(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=app_settings().lake_bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def predictions(self) -> list[dict[str, Any]]:
        import awswrangler as wr

        if not self.keys("curated/predictions/"):
            return []
        frame = wr.s3.read_parquet(
            f"s3://{app_settings().lake_bucket}/curated/predictions/",
            dataset=True,
            boto3_session=self.session,
        )
        return list(frame.to_dict("records"))


_SETTINGS: list[Settings] = []


def app_settings() -> Settings:
    return _SETTINGS[-1]


@pytest.fixture
def cloud(aws: Any, settings: Settings) -> Iterator[tuple[Cloud, FakeEndpoint]]:
    topic = "arn:aws:sns:us-east-1:123456789012:reviewsense-local-alerts"
    s = replace(settings, alerts_topic_arn=topic, burst_count=3, burst_window_s=3600)
    _SETTINGS.append(s)
    made = Cloud(aws, s)
    endpoint = FakeEndpoint()
    container = Container(s, aws)
    container.__dict__["scorer"] = endpoint  # the one double: the endpoint, at the adapter boundary
    reset_container(container)
    yield made, endpoint
    reset_container()
    _SETTINGS.pop()


def inline(channel: str, body: Any, message_id: str | None = None) -> dict[str, Any]:
    out = {"channel": channel, "body": body, "received_at": "2026-11-29T10:00:00+00:00"}
    if message_id:
        out["message_id"] = message_id
    return out


# -- scoring, storage, alerts, review ---------------------------------------------------------------


def test_a_mixed_batch_is_scored_in_one_call_stored_alerted_and_reviewed(
    cloud: tuple[Cloud, FakeEndpoint],
) -> None:
    c, endpoint = cloud
    c.send(inline("email", EMAIL_NEGATIVE, "mail-1"))
    turns = [{"speaker": "customer", "text": "Terrible service, never again."}]
    c.send(
        inline(
            "chat", {"conversation_id": "c-1", "customer_id": "CUST-1", "product_id": "1078", "turns": turns}
        )
    )
    c.send(inline("app", app_review("r-1", "Lovely fit, great fabric.", rating=5)))
    c.send(inline("social", social_post("p-1", "unsure what to think about the new collection")))

    result = c.poll()

    assert result is not None and result["batchItemFailures"] == []
    report = result["report"]
    assert (report["records"], report["scored"], report["alerts"], report["reviews"]) == (4, 4, 2, 1)
    # One InvokeEndpoint for the batch, each instance with its feedback id; the batch id is the InferenceId.
    assert len(endpoint.calls) == 1
    batch_id, instances = endpoint.calls[0]
    assert batch_id == report["batch_id"] and batch_id.startswith("fanin-")
    assert sorted(i["feedback_id"] for i in instances) == sorted(i["id"] for i in c.feedback_items())
    # DynamoDB: one complete item per feedback id, PII masked.
    items = {i["channel"]: i for i in c.feedback_items()}
    assert sorted(items) == ["app", "chat", "email", "social"]
    assert all(i["completed_at"] and i["batch_id"] == batch_id for i in items.values())
    assert items["email"]["label"] == "negative" and items["email"]["alert"] == "single"
    assert "ann.smith@example.com" not in json.dumps(items) and "7946 0958" not in json.dumps(items)
    # Curated Parquet, one row per feedback id, and the Glue table over it.
    rows = {r["feedback_id"]: r for r in c.predictions()}
    assert set(rows) == {i["id"] for i in items.values()}
    assert rows[items["app"]["id"]]["label"] == "positive"
    assert rows[items["email"]["id"]]["p_negative"] == pytest.approx(0.95)
    table = c.session.client("glue").get_table(DatabaseName="reviewsense", Name="predictions")["Table"]
    assert [col["Name"] for col in table["StorageDescriptor"]["Columns"]][:2] == ["feedback_id", "batch_id"]
    # Alerts: the unfiltered subscriber hears both negatives, the chat-only subscriber only the chat one.
    everything = c.alerts(c.all_alerts)
    assert sorted(a["attributes"]["channel"] for a in everything) == ["chat", "email"]
    chat_only = c.alerts(c.chat_alerts)
    assert [a["attributes"] for a in chat_only] == [
        {"channel": "chat", "product_id": "1078", "severity": "high", "label": "negative", "kind": "single"}
    ]
    assert chat_only[0]["message"]["feedback_id"] == items["chat"]["id"]
    assert "ann.smith@example.com" not in json.dumps(everything)
    # The unsure one waits for a human with its text, prediction and probabilities.
    (review,) = c.drain(c.review)
    request = json.loads(review["Body"])
    assert request["feedback_id"] == items["social"]["id"]
    assert request["text"] == "unsure what to think about the new collection"
    assert (request["label"], request["probabilities"]["neutral"]) == ("neutral", 0.5)
    assert (
        c.sqs.get_queue_attributes(QueueUrl=c.queue, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_a_redelivered_message_is_scored_once_and_alerts_once(cloud: tuple[Cloud, FakeEndpoint]) -> None:
    c, endpoint = cloud
    message = inline("email", EMAIL_NEGATIVE, "mail-7")
    c.send(message)
    first = c.poll()
    c.send(message)  # the sender retried
    c.send(message)
    second = c.poll()

    assert first is not None and second is not None
    assert (first["report"]["scored"], second["report"]["scored"], second["report"]["duplicates"]) == (
        1,
        0,
        1,
    )
    assert len(endpoint.scored_ids) == 1
    assert len(c.feedback_items()) == 1
    assert len(c.predictions()) == 1
    assert len(c.alerts(c.all_alerts)) == 1


def test_a_burst_of_negatives_for_one_product_is_one_burst_alert(cloud: tuple[Cloud, FakeEndpoint]) -> None:
    c, _ = cloud
    for n in range(4):  # burst_count is 3
        c.send(inline("app", app_review(f"b-{n}", f"Terrible zip number {n}", product="862")))
    c.send(inline("app", app_review("other", "Terrible colour", product="999")))
    first = c.poll()
    c.send(inline("app", app_review("b-late", "Terrible, again", product="862")))
    later = c.poll()

    assert first is not None and later is not None
    assert (first["report"]["alerts"], first["report"]["burst_alerts"]) == (1, 1)
    assert (later["report"]["alerts"], later["report"]["burst_alerts"], later["report"]["suppressed"]) == (
        0,
        0,
        1,
    )
    alerts = c.alerts(c.all_alerts)
    kinds = sorted((a["attributes"]["kind"], a["attributes"]["product_id"]) for a in alerts)
    assert kinds == [("burst", "862"), ("single", "999")]
    burst = next(a["message"] for a in alerts if a["attributes"]["kind"] == "burst")
    assert (burst["negatives"], len(burst["feedback"]), burst["severity"]) == (4, 4, "high")
    states = sorted(i["alert"] for i in c.feedback_items())
    assert states == ["burst"] * 4 + ["single", "suppressed"]


# -- failures ----------------------------------------------------------------------------------------


def test_poison_messages_are_quarantined_at_once_with_their_reason(cloud: tuple[Cloud, FakeEndpoint]) -> None:
    c, endpoint = cloud
    c.send("this is not json")
    c.send(inline("fax", "a channel we do not have"))
    c.send(inline("email", "no headers at all, just words"))
    c.send(inline("social", [social_post("ok-1", "Nice shop."), {"post_id": "p-2", "author": "@x"}]))

    result = c.poll()

    assert result is not None and result["batchItemFailures"] == []
    assert (result["report"]["quarantined"], result["report"]["scored"]) == (4, 1)
    keys = c.keys("quarantine/feedback/")
    assert len(keys) == 4
    reasons = sorted(
        r["reason"]
        for k in keys
        for r in json.loads(c.s3.get_object(Bucket="reviewsense-lake", Key=k)["Body"].read())["rejected"]
    )
    assert reasons == ["broken_mime", "missing_field", "unknown_channel", "unparsable"]
    assert len(endpoint.scored_ids) == 1
    assert c.poll() is None  # nothing left to retry
    assert c.drain(c.dlq) == []


def test_endpoint_failure_keeps_only_the_scorable_messages_and_they_reach_the_dlq_then_replay(
    cloud: tuple[Cloud, FakeEndpoint],
) -> None:
    c, endpoint = cloud
    endpoint.failing = True
    sent = [c.send(inline("app", app_review(f"f-{n}", f"Terrible {n}"))) for n in range(3)]
    poison = c.send("{not json")

    first = c.poll()
    assert first is not None
    assert sorted(f["itemIdentifier"] for f in first["batchItemFailures"]) == sorted(sent)
    failure = c.item(f"error#{sent[0]}")
    assert failure is not None and "DependencyUnavailableError" in failure["error"]
    assert c.poll() is not None  # second receive: fails again
    assert c.poll() is None  # third receive: moto's redrive moved them to the DLQ
    in_dlq = c.drain(c.dlq)
    assert sorted(m["MessageId"] for m in in_dlq) == sorted(sent)
    assert len(c.keys("quarantine/feedback/")) == 1 and poison not in {m["MessageId"] for m in in_dlq}
    assert c.feedback_items() == []
    assert c.alerts(c.all_alerts) == []

    endpoint.failing = False  # the cause is fixed: replay the DLQ
    for m in in_dlq:
        c.send(m["Body"])
    replay = c.poll()
    assert replay is not None and replay["batchItemFailures"] == []
    # input = scored + quarantined + DLQ, none twice
    assert (len(c.feedback_items()), len(c.keys("quarantine/feedback/")), len(c.drain(c.dlq))) == (3, 1, 0)
    assert len(c.predictions()) == 3
    assert len(c.alerts(c.all_alerts)) == 1  # 3 negatives of one product: the burst alert


def test_every_input_item_is_scored_quarantined_or_in_the_dlq_exactly_once(
    cloud: tuple[Cloud, FakeEndpoint],
) -> None:
    c, endpoint = cloud
    good = [
        inline("app", app_review(f"g-{n}", "Lovely", product=str(n), rating=5), f"g-{n}") for n in range(12)
    ]
    bad = ["null", "[]", inline("chat", {"conversation_id": "c", "customer_id": "x", "turns": []})]
    for message in good + bad:
        c.send(message)
    c.send(good[0])  # a duplicate
    endpoint.failing = True
    c.poll()  # the first 10 fail to score (their poison ones are quarantined)
    endpoint.failing = False
    while c.poll() is not None:
        pass
    scored = c.feedback_items()
    quarantined = c.keys("quarantine/feedback/")
    dead = c.drain(c.dlq)
    assert (len(scored), len(quarantined), len(dead)) == (12, 3, 0)
    assert endpoint.failures == 1
    assert len(endpoint.scored_ids) == len(set(endpoint.scored_ids)) == 12
    assert len(c.predictions()) == 12


# -- the other entry points ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
def test_post_feedback_enqueues_one_envelope_and_rejects_bad_input(cloud: tuple[Cloud, FakeEndpoint]) -> None:
    from chalice.test import Client

    c, _ = cloud
    with Client(app.app) as client:
        ok = client.http.post(
            "/feedback",
            headers={"Content-Type": "application/json"},
            body=json.dumps(inline("social", social_post("p-9", "Great shop"), "crm-9")),
        )
        bad = {
            "unknown channel": {"channel": "fax", "body": "x"},
            "body is empty": {"channel": "call", "body": "   "},
            "exactly one of body": {"channel": "call"},
            "received_at has no UTC offset": {
                "channel": "call",
                "body": "x",
                "received_at": "2026-11-29T10:00",
            },
            "must be a JSON object": ["not", "an", "object"],
        }
        answers = {
            reason: client.http.post(
                "/feedback", headers={"Content-Type": "application/json"}, body=json.dumps(b)
            )
            for reason, b in bad.items()
        }
    assert ok.status_code == 202
    (queued,) = c.drain(c.queue)
    assert json.loads(ok.body) == {"message_id": queued["MessageId"], "channel": "social"}
    assert json.loads(queued["Body"])["message_id"] == "crm-9"
    for reason, answer in answers.items():
        assert answer.status_code == 400, reason
        assert reason in json.loads(answer.body)["Message"], reason


def test_an_upload_under_raw_feedback_is_fanned_in_and_not_ingested(
    lake: Any, cloud: tuple[Cloud, FakeEndpoint], request: pytest.FixtureRequest
) -> None:
    from reviewsense.localcloud import sqspoller

    c, _ = cloud
    installed = sqspoller.install()  # moto's own delivery off: this test's poller delivers
    request.addfinalizer(lambda: installed and sqspoller.uninstall())
    body = json.dumps([app_review("u-1", "Terrible stitching"), app_review("u-2", "Fine", rating=4)])
    c.s3.put_object(Bucket="reviewsense-lake", Key="raw/feedback/app/2026/batch.json", Body=body.encode())

    (pointer,) = c.drain(c.queue)  # feedback_upload turned the upload into one pointer message
    envelope = json.loads(pointer["Body"])
    assert envelope["channel"] == "app" and envelope["s3"]["key"] == "raw/feedback/app/2026/batch.json"
    assert c.keys("curated/reviews/") == []  # ingest heard the same upload and left it alone
    c.send(pointer["Body"])
    result = c.poll()
    assert result is not None and result["report"]["scored"] == 2
    sources = {i["source"] for i in c.feedback_items()}
    assert sources == {f"s3://reviewsense-lake/raw/feedback/app/2026/batch.json#{envelope['s3']['etag']}"}


def test_a_quarantined_message_keeps_no_personal_data_in_clear(cloud: tuple[Cloud, FakeEndpoint]) -> None:
    c, _ = cloud
    raw = b"Subject: refund\r\n\r\nMail ann.smith@example.com or call +44 20 7946 0958 about order 1234.\r\n"
    encoded = base64.b64encode(raw).decode()
    c.send({"channel": "email", "body_base64": encoded})  # no From: the parser rejects it

    c.poll()

    (key,) = c.keys("quarantine/feedback/email/")
    stored = c.s3.get_object(Bucket="reviewsense-lake", Key=key)["Body"].read().decode()
    assert "ann.smith@example.com" not in stored and "7946 0958" not in stored and encoded not in stored
    record = json.loads(stored)
    assert [r["reason"] for r in record["rejected"]] == ["missing_field"]
    assert "order 1234" in record["excerpt"]


def test_a_failed_alert_is_retried_without_scoring_again_and_sent_once(
    cloud: tuple[Cloud, FakeEndpoint],
) -> None:
    c, endpoint = cloud
    sns = c.session.client("sns")
    sns.delete_topic(TopicArn=c.topic)  # the topic is gone for a while: publishing fails (NotFound)
    message_id = c.send(inline("email", EMAIL_NEGATIVE, "mail-9"))

    first = c.poll()

    assert first is not None and first["batchItemFailures"] == [{"itemIdentifier": message_id}]
    (item,) = c.feedback_items()
    assert (item["alert"], item.get("alert_message_id"), item.get("completed_at")) == ("single", None, None)
    sns.create_topic(Name="reviewsense-local-alerts")
    sns.subscribe(TopicArn=c.topic, Protocol="sqs", Endpoint=c.arn(c.all_alerts))

    second = c.poll()

    assert second is not None and second["batchItemFailures"] == []
    assert (second["report"]["scored"], second["report"]["resumed"], second["report"]["alerts"]) == (0, 1, 1)
    assert len(endpoint.calls) == 1
    assert len(c.alerts(c.all_alerts)) == 1
    assert len(c.predictions()) == 1
    assert c.poll() is None


def test_ingest_leaves_feedback_files_to_the_fan_in(lake: Any) -> None:
    from tests.helpers.paths import ROOT

    event = json.loads((ROOT / "tests" / "events" / "s3_object_created.json").read_text())
    event["detail"]["bucket"]["name"] = "reviewsense-lake"
    event["detail"]["object"]["key"] = "raw/feedback/chat/a.json"
    result = app.ingest(event, None)
    assert (result["status"], result["reason"]) == (
        "skipped",
        "feedback file: scored by the real-time fan-in, not ingested",
    )


def test_a_large_file_of_negatives_for_one_product_is_one_burst_alert(
    cloud: tuple[Cloud, FakeEndpoint],
) -> None:
    c, endpoint = cloud
    reviews = [app_review(f"big-{n}", f"Terrible seam {n}", product="862") for n in range(60)]
    key = "raw/feedback/app/big.json"
    etag = c.s3.put_object(Bucket="reviewsense-lake", Key=key, Body=json.dumps(reviews).encode())["ETag"]
    c.send({"channel": "app", "s3": {"bucket": "reviewsense-lake", "key": key, "etag": etag}})

    result = c.poll()

    assert result is not None and result["batchItemFailures"] == []
    report = result["report"]
    assert (report["scored"], report["alerts"], report["burst_alerts"], report["suppressed"]) == (
        60,
        0,
        1,
        35,
    )
    assert len(endpoint.calls) == 1 and len(endpoint.calls[0][1]) == 60
    (alert,) = c.alerts(c.all_alerts)
    assert (alert["attributes"]["kind"], len(alert["message"]["feedback"])) == ("burst", 25)
    (window,) = {burst_window(i["received_at"], 3600) for i in c.feedback_items()}
    counter = c.item(f"burst#862#{window}")
    assert counter is not None and counter["count"] == 60 and len(counter["members"]) == 60
