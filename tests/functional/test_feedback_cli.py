"""The ``reviewsense feedback`` helpers against moto, with the real fan-in handler behind the queue.

The fan-in's resources, its subscribers and the poller come from ``tests/functional/test_fanin.py``
(``Cloud``; ``FakeEndpoint`` is the one double, the endpoint at the scorer boundary). The helpers
under test (``reviewsense.feedbackops``) are the operator's side: send the example files, wait for
what the fan-in made of them, tail a filtered subscriber, show an item, label a review request into
the lake, replay the DLQ, score texts through a stubbed ``sagemaker-runtime`` client, and find
``POST /feedback`` of an AWS stage from its stack's outputs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chalicelib.config import Settings
from chalicelib.container import Container, get_container, reset_container
from chalicelib.domain import lake
from chalicelib.domain.reviews import ReviewParser
from reviewsense import cli, feedbackcli
from reviewsense import feedbackops as ops
from reviewsense.errors import OperatorError, StageNotDeployedError
from reviewsense.target import Target
from tests.functional.test_fanin import MAX_RECEIVE, Cloud, FakeEndpoint
from tests.helpers.paths import ROOT

EXAMPLES = ROOT / "examples" / "feedback"
TOPIC = "arn:aws:sns:us-east-1:123456789012:reviewsense-local-alerts"


class Fixture:
    def __init__(self, aws: Any, settings: Settings) -> None:
        self.settings = settings
        self.cloud = Cloud(aws, settings)
        self.endpoint = FakeEndpoint()
        container = Container(settings, aws)
        container.__dict__["scorer"] = self.endpoint
        reset_container(container)
        self.target = Target(settings, aws, None, "local")

    def fan_in(self) -> None:
        while self.cloud.poll() is not None:
            pass


@pytest.fixture
def fx(aws: Any, settings: Settings) -> Iterator[Fixture]:
    made = Fixture(aws, replace(settings, alerts_topic_arn=TOPIC, burst_count=5, burst_window_s=3600))
    yield made
    reset_container()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sent_files_are_waited_for_until_scored_or_quarantined(fx: Fixture) -> None:
    email = ops.send_file(fx.target, EXAMPLES / "email" / "torn-dress.eml", "email", "queue")
    bad = ops.send_file(fx.target, EXAMPLES / "malformed" / "chat-no-turns.json", "chat", "queue")
    assert email.accepted and bad.accepted
    assert len(email.feedback_ids) == 1 and email.quarantine_key == ""
    assert bad.feedback_ids == [] and bad.quarantine_key.startswith("quarantine/feedback/chat/")
    before = ops.wait_for_outcomes(fx.target, [email, bad], timeout_s=0)
    assert [o.done for o in before] == [False, False]
    assert before[0].lines == [f"{email.feedback_ids[0]}: pending"]
    fx.fan_in()
    after = ops.wait_for_outcomes(fx.target, [email, bad], timeout_s=0)
    assert [o.done for o in after] == [True, True]
    assert after[0].lines == [f"{email.feedback_ids[0]}: negative 0.95, alert=single"]
    assert after[1].lines == [f"quarantined (missing_field): {bad.quarantine_key}"]
    # The fan-in stored the item under the id predicted before sending, with the PII masked.
    item = ops.feedback_item(fx.target, email.feedback_ids[0])
    assert item["channel"] == "email" and item["product_id"] == "1078"
    assert "+44 20 7946 0958" not in item["text"] and "[PHONE]" in item["text"]


def test_sending_the_same_file_again_is_the_same_feedback_scored_once(fx: Fixture) -> None:
    path = EXAMPLES / "social" / "posts.json"
    first = ops.send_file(fx.target, path, "social", "queue")
    fx.fan_in()
    second = ops.send_file(fx.target, path, "social", "queue")
    fx.fan_in()
    assert first.ref != second.ref  # two SQS messages ...
    assert first.feedback_ids == second.feedback_ids and len(first.feedback_ids) == 2
    assert sorted(fx.endpoint.scored_ids) == sorted(first.feedback_ids)  # ... scored once
    tagged = ops.send_file(fx.target, path, "social", "queue", tag="run-2")
    assert set(tagged.feedback_ids).isdisjoint(first.feedback_ids)


def test_an_upload_is_followed_through_the_pointer_message(fx: Fixture) -> None:
    sent = ops.send_file(fx.target, EXAMPLES / "call" / "call-7731.txt", "call", "upload", tag="t1")
    assert sent.ref == "raw/feedback/call/t1/call-7731.txt"
    head = fx.cloud.s3.head_object(Bucket=fx.settings.lake_bucket, Key=sent.ref)
    assert sent.source == f"s3://{fx.settings.lake_bucket}/{sent.ref}#{head['ETag'].strip(chr(34))}"
    # What the upload event does on the local cloud and AWS: feedback_upload enqueues a pointer.
    source = lake.SourceObject(fx.settings.lake_bucket, sent.ref, head["ETag"].strip('"'))
    assert get_container().feedback_intake.enqueue_upload(source)["status"] == "queued"
    fx.fan_in()
    (outcome,) = ops.wait_for_outcomes(fx.target, [sent], timeout_s=0)
    assert outcome.done and outcome.lines == [f"{sent.feedback_ids[0]}: negative 0.95, alert=single"]


def test_a_file_too_large_for_a_queue_message_is_refused_with_the_way_round(
    fx: Fixture, tmp_path: Path
) -> None:
    path = write(tmp_path, "big.txt", "Customer: " + "terrible " * 40_000)
    sent = ops.send_file(fx.target, path, "call", "queue")
    assert not sent.accepted and sent.detail.endswith("use --via upload")
    (outcome,) = ops.wait_for_outcomes(fx.target, [sent], timeout_s=0)
    assert outcome.done and outcome.lines == [f"refused: {sent.detail}"]


def test_tail_receives_only_its_channel_through_an_idempotent_filtered_subscription(fx: Fixture) -> None:
    chat = ops.ensure_subscriber(fx.target, "chat")
    assert ops.ensure_subscriber(fx.target, "chat") == chat  # same queue, same subscription
    everything = ops.ensure_subscriber(fx.target, None)
    assert chat.queue_url.endswith("/reviewsense-local-alerts-tail-chat")
    assert everything.queue_url.endswith("/reviewsense-local-alerts-tail-all")
    subscription = fx.cloud.session.client("sns").get_subscription_attributes(
        SubscriptionArn=chat.subscription_arn
    )["Attributes"]
    assert json.loads(subscription["FilterPolicy"]) == {"channel": ["chat"]}
    assert subscription["RawMessageDelivery"] == "false"
    chat_sent = ops.send_file(fx.target, EXAMPLES / "chat" / "conversations.json", "chat", "queue")
    ops.send_file(fx.target, EXAMPLES / "email" / "torn-dress.eml", "email", "queue")
    fx.fan_in()
    alerts = ops.receive_alerts(fx.target, chat, seconds=0)
    assert [(a.kind, a.severity, a.channel, a.product_id, a.label) for a in alerts] == [
        ("single", "high", "chat", "1094", "negative")
    ]
    assert alerts[0].feedback_id == chat_sent.feedback_ids[0]
    assert alerts[0].excerpt == (
        "The jacket zipper broke the first day. Terrible, I want my money back on card [CARD]. "
        "Worst purchase this year."
    )
    assert ops.receive_alerts(fx.target, chat, seconds=0) == []  # received and deleted
    ops.send_file(fx.target, EXAMPLES / "chat" / "conversations.json", "chat", "queue", tag="again")
    fx.fan_in()
    (followed,) = ops.receive_alerts(fx.target, chat, seconds=float("inf"), max_alerts=1)  # --follow
    assert followed.channel == "chat"
    assert sorted(a.channel for a in ops.receive_alerts(fx.target, everything, seconds=0)) == [
        "chat",
        "chat",
        "email",
    ]


def test_show_reads_the_item_and_names_a_missing_one(fx: Fixture) -> None:
    with pytest.raises(ops.FeedbackNotFoundError, match="no feedback 0123 in reviewsense-local-feedback"):
        ops.feedback_item(fx.target, "0123")


def test_a_human_label_lands_in_the_lake_as_a_review_the_ingest_curates(fx: Fixture, tmp_path: Path) -> None:
    unsure = [{"post_id": "p-u", "author": "@a", "product_id": "862", "text": "unsure about this jumper"}]
    sent = ops.send_file(fx.target, write(tmp_path, "unsure.json", json.dumps(unsure)), "social", "queue")
    fx.fan_in()
    (fid,) = sent.feedback_ids
    listed = ops.pending_reviews(fx.target, limit=10)
    assert [r.row() for r in listed] == [
        [fid, "social", "862", "neutral", "0.30", "0.50", "0.20", "unsure about this jumper"]
    ]
    assert [r.feedback_id for r in ops.pending_reviews(fx.target, limit=10)] == [fid]  # still queued
    result = ops.label_review(fx.target, fid, "negative")
    assert result == {
        "feedback_id": fid,
        "label": "negative",
        "rating": 1,
        "key": f"raw/human_review/{fid}.jsonl",
    }
    data = fx.cloud.s3.get_object(Bucket=fx.settings.lake_bucket, Key=result["key"])["Body"].read()
    parsed = ReviewParser().parse(
        data, source_key=result["key"], channel="human_review", ingested_at=datetime.now(UTC)
    )
    assert parsed.quarantined == []
    (review,) = parsed.reviews
    assert (review.text, review.rating, review.sentiment, review.product_id) == (
        "unsure about this jumper",
        1,
        -1,
        "862",
    )
    assert ops.feedback_item(fx.target, fid)["human_label"] == "negative"
    assert ops.pending_reviews(fx.target, limit=10) == []
    waiting = "is not waiting in reviewsense-local-feedback-review"
    with pytest.raises(ops.FeedbackNotFoundError, match=waiting):
        ops.label_review(fx.target, fid, "neutral")


def test_listing_or_labelling_leaves_every_other_review_request_visible(fx: Fixture, tmp_path: Path) -> None:
    posts = [{"post_id": f"p-{i}", "author": "@a", "text": f"unsure {i}"} for i in range(3)]
    sent = ops.send_file(fx.target, write(tmp_path, "three.json", json.dumps(posts)), "social", "queue")
    fx.fan_in()
    assert len(ops.pending_reviews(fx.target, limit=1)) == 1
    listed = [r.feedback_id for r in ops.pending_reviews(fx.target, limit=10)]
    assert sorted(listed) == sorted(sent.feedback_ids)  # the one-item listing hid none of the others
    ops.label_review(fx.target, listed[0], "neutral")
    assert sorted(r.feedback_id for r in ops.pending_reviews(fx.target, limit=10)) == sorted(listed[1:])


@pytest.mark.parametrize(("label", "rating"), [("negative", 1), ("neutral", 3), ("positive", 5)])
def test_the_rating_of_a_human_label_maps_back_to_it(label: str, rating: int) -> None:
    assert ops.rating_for_label(label) == rating


def test_replay_dlq_sends_each_message_back_with_its_last_error(fx: Fixture) -> None:
    fx.endpoint.failing = True
    sent = ops.send_file(fx.target, EXAMPLES / "app" / "reviews.json", "app", "queue")
    for _ in range(MAX_RECEIVE + 1):
        fx.fan_in()
    assert len(fx.cloud.drain(fx.cloud.queue)) == 0
    fx.endpoint.failing = False
    (replayed,) = ops.replay_dlq(fx.target)
    assert replayed.dlq_message_id == sent.ref and replayed.channel == "app"
    assert replayed.error == (
        "score: DependencyUnavailableError: reviewsense-local-sentiment: ThrottlingException after 4 attempts"
    )
    assert ops.replay_dlq(fx.target) == []  # the DLQ is empty
    fx.fan_in()
    outcomes = ops.wait_for_outcomes(fx.target, [sent], timeout_s=0)
    assert outcomes[0].done and len(outcomes[0].lines) == 4
    assert sorted(fx.endpoint.scored_ids) == sorted(sent.feedback_ids)


class StubbedTarget(Target):
    """A target whose container talks to a stubbed ``sagemaker-runtime`` client."""

    def container(self) -> Container:
        return self.session.container  # type: ignore[no-any-return]


def test_score_sends_the_fan_in_payload_and_prints_labels(
    aws: Any, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = aws.client("sagemaker-runtime")
    answer = {
        "predictions": [
            {"label": "positive", "label_id": 2, "score": 0.9,
             "probabilities": {"negative": 0.05, "neutral": 0.05, "positive": 0.9}},
            {"label": "negative", "label_id": 0, "score": 0.8,
             "probabilities": {"negative": 0.8, "neutral": 0.1, "positive": 0.1}},
        ]
    }  # fmt: skip
    raw = json.dumps(answer).encode()
    texts = ["great fit", "terrible, mail me at a.b@example.com"]
    body = {
        "instances": [
            {"feedback_id": "cli-1", "text": "great fit", "title": ""},
            {"feedback_id": "cli-2", "text": "terrible, mail me at [EMAIL]", "title": ""},
        ]
    }
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "InvokedProductionVariant": "champion"},
            {
                "EndpointName": "reviewsense-local-sentiment",
                "ContentType": "application/json",
                "Accept": "application/json",
                "InferenceId": stub_any(),
                "Body": json.dumps(body, ensure_ascii=False).encode(),
            },
        )
        stub.add_client_error(
            "invoke_endpoint",
            "ValidationError",
            "Endpoint reviewsense-local-sentiment of account 123456789012 not found.",
            400,
        )
        container = Container(settings, aws)
        container.__dict__["runtime_client"] = client
        session = type("S", (), {"container": container})()
        stubbed = StubbedTarget(settings, session, None, "local")
        monkeypatch.setattr(feedbackcli, "_target", lambda args: stubbed)
        assert cli.main(["score", *texts]) == 0
        assert capsys.readouterr().out.splitlines()[2:4] == [
            "great fit                             positive  0.050       0.050      0.900       champion",
            "terrible, mail me at a.b@example.com  negative  0.800       0.100      0.100       champion",
        ]
        assert cli.main(["score", "anything"]) == 1
        assert capsys.readouterr().err == (
            "error: endpoint reviewsense-local-sentiment: "
            "Endpoint reviewsense-local-sentiment of account 123456789012 not found.\n"
        )


def stub_any() -> Any:
    from botocore.stub import ANY

    return ANY


def test_post_feedback_of_a_stage_is_the_stacks_endpoint_url(aws: Any, settings: Settings) -> None:
    cfn = aws.client("cloudformation")
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"EndpointURL": {"Value": "https://abc123.execute-api.us-east-1.amazonaws.com/api/"}},
    }
    cfn.create_stack(StackName="reviewsense-dev", TemplateBody=json.dumps(template))
    dev = Target(replace(settings, stage="dev"), aws, None, "dev")
    assert ops.feedback_api_url(dev) == "https://abc123.execute-api.us-east-1.amazonaws.com/api/feedback"
    bare = {"Resources": template["Resources"]}
    cfn.create_stack(StackName="reviewsense-bare", TemplateBody=json.dumps(bare))
    with pytest.raises(StageNotDeployedError, match="stack reviewsense-bare has no EndpointURL output"):
        ops.feedback_api_url(Target(settings, aws, None, "bare"))


def test_a_stage_without_an_alerts_topic_cannot_be_tailed(aws: Any, settings: Settings) -> None:
    with pytest.raises(OperatorError, match="the stage has no alerts topic"):
        ops.ensure_subscriber(Target(replace(settings, alerts_topic_arn=""), aws, None, "dev"), None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["feedback", "review", "--label", "negative"], "error: --label needs the feedback id to label\n"),
        (["feedback", "review", "abc"], "error: give --label negative|neutral|positive\n"),
    ],
)
def test_review_options_are_checked_before_any_call(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == message


def test_a_stage_on_aws_resolves_to_the_deployed_queue_topic_and_route(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import zipfile

    from reviewsense import target as targets

    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="reviewsense-dev-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="reviewsense-dev-feedback")["QueueUrl"]
    role = aws.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    deployed = {
        "REVIEWSENSE_ALERTS_TOPIC_ARN": topic,
        "REVIEWSENSE_FEEDBACK_QUEUE": "reviewsense-dev-feedback",
    }
    aws.client("lambda").create_function(
        FunctionName="reviewsense-dev-pipeline_prepare", Runtime="python3.11", Role=role,
        Handler="app.handler", Code={"ZipFile": code.getvalue()}, Environment={"Variables": deployed},
    )  # fmt: skip
    outputs = {"EndpointURL": {"Value": "https://dev123.execute-api.us-east-1.amazonaws.com/api/"}}
    template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}
    aws.client("cloudformation").create_stack(StackName="reviewsense-dev", TemplateBody=json.dumps(template))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    dev = targets.resolve(stage="dev")
    assert (dev.stage, dev.endpoint_url, dev.settings.stage) == ("dev", None, "dev")
    assert ops.feedback_api_url(dev) == "https://dev123.execute-api.us-east-1.amazonaws.com/api/feedback"
    subscriber = ops.ensure_subscriber(dev, "chat")
    assert subscriber.queue_url.endswith("/reviewsense-dev-alerts-tail-chat")
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscriber.subscription_arn)["Attributes"]
    assert attributes["TopicArn"] == topic
    sent = ops.send_file(dev, EXAMPLES / "chat" / "conversations.json", "chat", "queue")
    (message,) = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert message["MessageId"] == sent.ref
    assert json.loads(message["Body"])["message_id"] == sent.source.removeprefix("msg:")
    assert message["MessageAttributes"]["channel"]["StringValue"] == "chat"
