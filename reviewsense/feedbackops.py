"""Operator side of the real-time feedback fan-in: send, follow, look up, label, replay and score.

``reviewsense feedback ...``, ``reviewsense score`` and ``make demo`` call these helpers; they take a
``reviewsense.target.Target`` (the local cloud or an AWS stage) and raise ``OperatorError``.

- **send** (``send_file``): one file = one feedback message, through one of the three entry points of
  ``chalicelib/services/feedback_intake.py``: ``queue`` (an inline envelope sent straight to the
  feedback queue, the primary path upstream systems use), ``api`` (the same envelope posted to
  ``POST /feedback``, SigV4-signed) or ``upload`` (the file put under ``raw/feedback/<channel>/``).
  Inline messages carry a ``message_id`` derived from the channel and the bytes, so sending the same
  file again is the same feedback (scored once, alerted once). The file is parsed here with the
  fan-in's own parser (``chalicelib.domain.feedback.parse_feedback``) to know, before anything is
  sent, which feedback ids and which quarantine object it will produce: ``wait_for_outcomes`` then
  polls the feedback table and the quarantine zone for exactly those.
- **tail** (``ensure_subscriber``, ``receive_alerts``): a subscriber SQS queue per filter
  (``reviewsense-<stage>-alerts-tail-<channel|all>``) subscribed to the alerts topic, with an SNS
  filter policy on ``channel`` when one is given and SNS's envelope kept (no raw delivery): the
  alert's message attributes are read from it, as any subscriber would.
- **show** (``feedback_item``), **review** (``pending_reviews``, ``label_review``): the feedback
  table item; the human-review queue, listed without consuming it; a human label becomes a one-row
  JSON Lines review under ``raw/human_review/`` whose rating maps back to that label through
  ``chalicelib.domain.labels`` (so the ingest curates it as labelled data for retraining), is noted on
  the feedback item, and the review message is deleted.
- **replay-dlq** (``replay_dlq``): each DLQ message is sent back to the feedback queue, then deleted,
  with its last error from the ``error#<message id>`` item the fan-in kept.
- **score** (``score_texts``): texts scored on the live endpoint with the fan-in's scorer (one
  ``InvokeEndpoint``, ``{"instances": [...]}``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, error_message, is_not_found
from chalicelib.adapters.feedback_store import FeedbackStore
from chalicelib.config import APP_NAME
from chalicelib.domain.feedback import FeedbackParse, parse_feedback
from chalicelib.domain.labels import CLASS_NAMES, RATING_RULE, SENTIMENT_NAMES, sentiment_from_rating
from chalicelib.domain.pii import mask_pii
from chalicelib.errors import DependencyUnavailableError, ResourceNotFoundError
from reviewsense.errors import OperatorError
from reviewsense.target import Target, read_endpoint_file

VIAS = ("queue", "api", "upload")
#: SQS's message size limit every queue accepts; larger files go through ``--via upload``.
SQS_MAX_MESSAGE_BYTES = 256 * 1024
#: The lake channel human labels land in (``raw/human_review/<feedback id>.jsonl``).
HUMAN_REVIEW_CHANNEL = "human_review"
#: How long a listing hides the review messages it has read (they are made visible again at once).
PEEK_VISIBILITY_S = 30
EXCERPT_CHARS = 120


class FeedbackNotFoundError(OperatorError):
    """No such feedback item, or it is not waiting for review."""

    exit_code = 3


# -- send ------------------------------------------------------------------------------------------


@dataclass
class Sent:
    """One file sent: where it went, what the entry point answered, and what the fan-in will make of it."""

    path: str
    channel: str
    via: str
    accepted: bool
    #: The SQS message id (queue, api), or the object key (upload).
    ref: str
    #: The fan-in's source of the items (``msg:<message id>`` or ``s3://bucket/key#etag``).
    source: str = ""
    detail: str = ""
    feedback_ids: list[str] = field(default_factory=list)
    #: The quarantine object the rejected items of this message go to ("" when none is expected).
    quarantine_key: str = ""


def message_id_for(channel: str, data: bytes, tag: str = "") -> str:
    """The sender's id of a file's feedback: the same channel, bytes (and tag) are the same feedback."""
    digest = hashlib.sha256(b"\x1f".join((channel.encode(), tag.encode(), data))).hexdigest()[:32]
    return f"cli-{digest}"


def inline_message(channel: str, data: bytes, message_id: str) -> dict[str, Any]:
    """The inline envelope of ``chalicelib.domain.envelope``: text as ``body``, other bytes base64."""
    message: dict[str, Any] = {"channel": channel, "message_id": message_id}
    try:
        message["body"] = data.decode("utf-8")
    except UnicodeDecodeError:
        message["body_base64"] = base64.b64encode(data).decode("ascii")
    return message


def expected(tgt: Target, channel: str, data: bytes, source: str, *, pointer: bool) -> FeedbackParse:
    """What the fan-in's parser makes of these bytes (ids depend only on channel, source and item)."""
    s = tgt.settings
    return parse_feedback(
        channel.strip().lower(),
        data,
        source=source,
        received_at=datetime.now(UTC).isoformat(),
        salt=s.customer_ref_salt or "x",
        max_bytes=s.max_object_bytes if pointer else s.max_message_bytes,
    )


def quarantine_key(tgt: Target, parsed: FeedbackParse) -> str:
    """The fan-in's quarantine object for a message with rejected items (its ``_quarantine`` rule)."""
    if not parsed.rejected:
        return ""
    first = parsed.rejected[0]
    channel = first.channel if first.channel and first.channel.isalnum() else "unknown"
    digest = hashlib.sha256(first.source.encode()).hexdigest()[:24]
    return f"{tgt.settings.feedback_quarantine_prefix}{channel}/{digest}.json"


def feedback_api_url(tgt: Target) -> str:
    """``POST /feedback`` of the target: the local cloud's API Gateway, or the stage's ``EndpointURL``."""
    from reviewsense.signedhttp import deployed_api_url, local_api_url

    if tgt.endpoint_url:
        info = read_endpoint_file()
        if not info or not info.get("api_url"):
            raise OperatorError("the local cloud advertises no api_url: restart `reviewsense local up`")
        base = local_api_url(info)
    else:
        base = deployed_api_url(tgt.client("cloudformation"), f"{APP_NAME}-{tgt.stage}")
    return base.rstrip("/") + "/feedback"


def send_file(
    tgt: Target, path: Path, channel: str, via: str, *, tag: str = "", api_url: str | None = None
) -> Sent:
    """Send one file as one feedback message through ``via``; a refused message is ``accepted=False``."""
    if via not in VIAS:
        raise OperatorError(f"--via must be one of {', '.join(VIAS)}")
    if not path.is_file():
        raise OperatorError(f"{path} is not a file")
    data = path.read_bytes()
    if via == "upload":
        return _upload(tgt, path, channel, data, tag)
    message_id = message_id_for(channel, data, tag)
    message = inline_message(channel, data, message_id)
    source = f"msg:{message_id}"
    parsed = expected(tgt, channel, data, source, pointer=False)
    sent = Sent(str(path), channel, via, False, "", source)
    if via == "queue":
        size = len(json.dumps(message, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        if size > SQS_MAX_MESSAGE_BYTES:
            sent.detail = f"{size} bytes is more than a queue message takes: use --via upload"
            return sent
        sent.ref = _send(tgt, tgt.settings.feedback_queue, json.dumps(message), {"channel": channel})
    else:
        from reviewsense.signedhttp import post_json

        status, answer = post_json(
            api_url or feedback_api_url(tgt), message, tgt.session, tgt.session.region_name or "us-east-1"
        )
        if status != 202 or not isinstance(answer, Mapping):
            reason = answer.get("Message") or answer.get("message") if isinstance(answer, Mapping) else answer
            sent.detail = f"HTTP {status}: {reason}"
            return sent
        sent.ref = str(answer["message_id"])
    sent.accepted = True
    sent.feedback_ids = [r.feedback_id for r in parsed.records]
    sent.quarantine_key = quarantine_key(tgt, parsed)
    return sent


def _upload(tgt: Target, path: Path, channel: str, data: bytes, tag: str) -> Sent:
    s = tgt.settings
    key = f"{s.feedback_raw_prefix}{channel}/{tag + '/' if tag else ''}{path.name}"
    response = tgt.client("s3").put_object(Bucket=s.lake_bucket, Key=key, Body=data)
    source = f"s3://{s.lake_bucket}/{key}#{str(response['ETag']).strip(chr(34))}"
    parsed = expected(tgt, channel, data, source, pointer=True)
    return Sent(
        str(path),
        channel,
        "upload",
        True,
        key,
        source,
        feedback_ids=[r.feedback_id for r in parsed.records],
        quarantine_key=quarantine_key(tgt, parsed),
    )


def queue_url(tgt: Target, name: str) -> str:
    try:
        return str(tgt.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if error_code(exc) in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
            raise OperatorError(f"queue {name} does not exist: is the stage deployed?") from exc
        raise


def _send(tgt: Target, queue: str, body: str, attributes: Mapping[str, Any]) -> str:
    values = {
        k: v if isinstance(v, Mapping) else {"DataType": "String", "StringValue": str(v)}
        for k, v in attributes.items()
        if v
    }
    response = tgt.client("sqs").send_message(
        QueueUrl=queue_url(tgt, queue), MessageBody=body, MessageAttributes=values
    )
    return str(response["MessageId"])


# -- outcomes ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    sent: Sent
    done: bool
    #: One line per feedback id (label, probability, alert, review) and per quarantine.
    lines: list[str]


def feedback_store(tgt: Target) -> FeedbackStore:
    return FeedbackStore(tgt.client("dynamodb"), tgt.settings.feedback_table)


def outcome_of(tgt: Target, sent: Sent, store: FeedbackStore | None = None) -> Outcome:
    """Where the fan-in is with one sent file: scored items, its quarantine record, its last error."""
    if not sent.accepted:
        return Outcome(sent, True, [f"refused: {sent.detail}"])
    store = store or feedback_store(tgt)
    items = store.get_many(sent.feedback_ids) if sent.feedback_ids else {}
    lines, done = [], True
    for fid in sent.feedback_ids:
        item = items.get(fid)
        if item is None or not item.get("completed_at"):
            done = False
            lines.append(f"{fid}: pending")
            continue
        lines.append(f"{fid}: {describe_item(item)}")
    if sent.quarantine_key:
        record = _quarantine_record(tgt, sent.quarantine_key)
        if record is None:
            done = False
            lines.append("quarantine: pending")
        else:
            reasons = sorted({str(r.get("reason")) for r in record.get("rejected", [])})
            lines.append(f"quarantined ({', '.join(reasons)}): {sent.quarantine_key}")
    if not done and sent.via != "upload":
        failure = store.get(f"error#{sent.ref}")
        if failure:
            lines.append(f"retrying after: {failure.get('error')}")
    return Outcome(sent, done, lines)


def describe_item(item: Mapping[str, Any]) -> str:
    probabilities = item.get("probabilities") or {}
    top = probabilities.get(item.get("label"), item.get("score"))
    parts = [f"{item.get('label')} {float(top or 0):.2f}"]
    if item.get("alert"):
        parts.append(f"alert={item['alert']}")
    if item.get("review_message_id"):
        parts.append("human review")
    if item.get("human_label"):
        parts.append(f"human label={item['human_label']}")
    return ", ".join(parts)


def _quarantine_record(tgt: Target, key: str) -> dict[str, Any] | None:
    try:
        body = tgt.client("s3").get_object(Bucket=tgt.settings.lake_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise
    record: dict[str, Any] = json.loads(body)
    return record


def wait_for_outcomes(
    tgt: Target,
    sent: Sequence[Sent],
    timeout_s: float,
    progress: Callable[[int, int], None] | None = None,
    interval_s: float = 0.5,
) -> list[Outcome]:
    """Poll until every sent file is scored/quarantined or ``timeout_s`` passed; the last state of each."""
    store = feedback_store(tgt)
    deadline = time.monotonic() + timeout_s
    while True:
        outcomes = [outcome_of(tgt, s, store) for s in sent]
        finished = sum(o.done for o in outcomes)
        if progress is not None:
            progress(finished, len(outcomes))
        if finished == len(outcomes) or time.monotonic() >= deadline:
            return outcomes
        time.sleep(interval_s)


# -- tail --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscriber:
    queue_url: str
    queue_arn: str
    subscription_arn: str
    channel: str | None


def subscriber_queue_name(tgt: Target, channel: str | None) -> str:
    return f"{APP_NAME}-{tgt.settings.stage}-alerts-tail-{channel or 'all'}"


def ensure_subscriber(tgt: Target, channel: str | None, name: str | None = None) -> Subscriber:
    """The tail's queue, subscribed to the alerts topic (filtered on ``channel``); idempotent."""
    topic = tgt.settings.alerts_topic_arn
    if not topic:
        raise OperatorError("the stage has no alerts topic (REVIEWSENSE_ALERTS_TOPIC_ARN is empty)")
    sqs = tgt.client("sqs")
    queue_name = name or subscriber_queue_name(tgt, channel)
    url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "alerts-topic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    attributes = {"RawMessageDelivery": "false"}
    if channel:
        attributes["FilterPolicy"] = json.dumps({"channel": [channel]})
    try:
        subscription = tgt.client("sns").subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes, ReturnSubscriptionArn=True
        )
    except ClientError as exc:
        if error_code(exc) == "NotFound":
            raise OperatorError(f"the alerts topic {topic} does not exist: is the stage deployed?") from exc
        raise
    return Subscriber(url, arn, str(subscription["SubscriptionArn"]), channel)


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str
    channel: str
    product_id: str
    label: str
    feedback_id: str
    excerpt: str
    published_at: str
    message: dict[str, Any]

    def row(self) -> list[str]:
        return [
            self.published_at[:19],
            self.kind,
            self.severity,
            self.channel,
            self.product_id,
            self.feedback_id,
            self.excerpt,
        ]


ALERT_COLUMNS = ["published", "kind", "severity", "channel", "product", "feedback", "excerpt"]


def parse_alert(body: str, sqs_attributes: Mapping[str, Any] | None = None) -> Alert:
    """One alert as a subscriber queue holds it: SNS's envelope (or a raw delivery) around the JSON alert."""
    outer = json.loads(body)
    if isinstance(outer, Mapping) and outer.get("Type") == "Notification":
        message = json.loads(outer["Message"])
        attributes = {k: str(v.get("Value", "")) for k, v in (outer.get("MessageAttributes") or {}).items()}
        published = str(outer.get("Timestamp", ""))
    else:
        message = dict(outer)
        attributes = {k: str(v.get("StringValue", "")) for k, v in (sqs_attributes or {}).items()}
        published = ""
    if message.get("kind") == "burst":
        feedback = message.get("feedback") or [{}]
        first = str(feedback[0].get("text") or "")
        feedback_ref = f"{message.get('negatives')} negatives"
        text = f"{len(feedback)} in this alert, e.g. {first}"
    else:
        feedback_ref = str(message.get("feedback_id", ""))
        text = str(message.get("text") or "")
    excerpt = " ".join(mask_pii(text).split())
    return Alert(
        kind=attributes.get("kind") or str(message.get("kind", "")),
        severity=attributes.get("severity") or str(message.get("severity", "")),
        channel=attributes.get("channel") or str(message.get("channel", "")),
        product_id=attributes.get("product_id") or str(message.get("product_id", "")),
        label=attributes.get("label", ""),
        feedback_id=feedback_ref,
        excerpt=excerpt[:EXCERPT_CHARS],
        published_at=published,
        message=message,
    )


def receive_alerts(
    tgt: Target,
    subscriber: Subscriber,
    seconds: float,
    *,
    max_alerts: int | None = None,
    on_alert: Callable[[Alert], None] | None = None,
) -> list[Alert]:
    """Receive, delete and return the alerts that arrive within ``seconds`` (or until ``max_alerts``)."""
    sqs = tgt.client("sqs")
    deadline = time.monotonic() + seconds
    alerts: list[Alert] = []
    while max_alerts is None or len(alerts) < max_alerts:
        remaining = deadline - time.monotonic()
        response = sqs.receive_message(
            QueueUrl=subscriber.queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=int(max(0.0, min(20.0, remaining))),  # --follow: remaining is inf
        )
        for message in response.get("Messages", []):
            alert = parse_alert(message["Body"], message.get("MessageAttributes"))
            sqs.delete_message(QueueUrl=subscriber.queue_url, ReceiptHandle=message["ReceiptHandle"])
            alerts.append(alert)
            if on_alert is not None:
                on_alert(alert)
        if time.monotonic() >= deadline:
            break
    return alerts


# -- show and review ---------------------------------------------------------------------------------


def feedback_item(tgt: Target, feedback_id: str) -> dict[str, Any]:
    item = feedback_store(tgt).get(feedback_id)
    if item is None:
        raise FeedbackNotFoundError(f"no feedback {feedback_id} in {tgt.settings.feedback_table}")
    return item


@dataclass(frozen=True)
class ReviewRequest:
    message_id: str
    receipt_handle: str
    body: dict[str, Any]

    @property
    def feedback_id(self) -> str:
        return str(self.body.get("feedback_id", ""))

    def row(self) -> list[Any]:
        p = self.body.get("probabilities") or {}
        text = " ".join(str(self.body.get("text") or "").split())
        return [
            self.feedback_id,
            self.body.get("channel"),
            self.body.get("product_id"),
            self.body.get("label"),
            *(f"{float(p.get(n, 0)):.2f}" for n in CLASS_NAMES),
            text[:EXCERPT_CHARS],
        ]


REVIEW_COLUMNS = ["feedback", "channel", "product", "label", *(f"p_{n}" for n in CLASS_NAMES), "text"]


def _read_reviews(tgt: Target, url: str, stop: Callable[[ReviewRequest], bool]) -> list[ReviewRequest]:
    """Read review messages (hidden while read) until ``stop`` says so or the queue has no more."""
    sqs = tgt.client("sqs")
    seen: dict[str, ReviewRequest] = {}
    while True:
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=PEEK_VISIBILITY_S, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if not messages:
            return list(seen.values())
        batch = [ReviewRequest(m["MessageId"], m["ReceiptHandle"], json.loads(m["Body"])) for m in messages]
        seen.update((r.message_id, r) for r in batch)  # all of them: every hidden one is released later
        if any([stop(r) for r in batch]):
            return list(seen.values())


def _release(tgt: Target, url: str, requests: Sequence[ReviewRequest]) -> None:
    """Make messages read by a listing visible again at once."""
    sqs = tgt.client("sqs")
    for start in range(0, len(requests), 10):
        chunk = requests[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": r.receipt_handle, "VisibilityTimeout": 0}
                for i, r in enumerate(chunk)
            ],
        )


def pending_reviews(tgt: Target, limit: int) -> list[ReviewRequest]:
    """Up to ``limit`` review requests, left on the queue."""
    url = queue_url(tgt, tgt.settings.review_queue)
    count = 0

    def enough(_: ReviewRequest) -> bool:
        nonlocal count
        count += 1
        return count >= limit

    found = _read_reviews(tgt, url, enough)
    _release(tgt, url, found)
    return found[:limit]


def rating_for_label(label: str) -> int:
    """A star rating that ``chalicelib.domain.labels`` maps back to ``label`` (the extreme one)."""
    sentiments = {name: s for s, name in SENTIMENT_NAMES.items()}
    if label not in sentiments:
        raise OperatorError(f"label must be one of {', '.join(CLASS_NAMES)}")
    sentiment = sentiments[label]
    ratings = RATING_RULE[sentiment]
    rating = max(ratings) if sentiment > 0 else min(ratings)
    assert sentiment_from_rating(rating) == sentiment
    return rating


def label_review(tgt: Target, feedback_id: str, label: str) -> dict[str, Any]:
    """Record a human label: a labelled review in the lake, noted on the item, the request deleted."""
    rating = rating_for_label(label)
    url = queue_url(tgt, tgt.settings.review_queue)
    read = _read_reviews(tgt, url, lambda r: r.feedback_id == feedback_id)
    match = next((r for r in read if r.feedback_id == feedback_id), None)
    _release(tgt, url, [r for r in read if r is not match])
    if match is None:
        raise FeedbackNotFoundError(f"feedback {feedback_id} is not waiting in {tgt.settings.review_queue}")
    body = match.body
    row = {
        "review_id": feedback_id,
        "product_id": body.get("product_id"),
        "title": body.get("title"),
        "text": body.get("text"),
        "rating": rating,
    }
    s = tgt.settings
    key = f"{s.raw_prefix}{HUMAN_REVIEW_CHANNEL}/{feedback_id}.jsonl"
    line = json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
    tgt.client("s3").put_object(Bucket=s.lake_bucket, Key=key, Body=line.encode("utf-8"))
    try:
        feedback_store(tgt).update(
            feedback_id,
            {"human_label": label, "labelled_at": datetime.now(UTC).isoformat(), "label_key": key},
        )
    except ClientError as exc:  # the item expired or was never stored: the label in the lake is what counts
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
    tgt.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=match.receipt_handle)
    return {"feedback_id": feedback_id, "label": label, "rating": rating, "key": key}


# -- DLQ ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    dlq_message_id: str
    message_id: str
    channel: str
    error: str


def replay_dlq(tgt: Target, max_messages: int | None = None) -> list[Replayed]:
    """Send each DLQ message back to the feedback queue (body and attributes), then delete it."""
    s = tgt.settings
    sqs = tgt.client("sqs")
    dlq, queue = queue_url(tgt, s.feedback_dlq), queue_url(tgt, s.feedback_queue)
    store = feedback_store(tgt)
    done: list[Replayed] = []
    while max_messages is None or len(done) < max_messages:
        room = 10 if max_messages is None else min(10, max_messages - len(done))
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=room, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            attributes = {
                k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
                for k, v in (m.get("MessageAttributes") or {}).items()
                if "StringValue" in v
            }
            failure = store.get(f"error#{m['MessageId']}") or {}
            new_id = sqs.send_message(QueueUrl=queue, MessageBody=m["Body"], MessageAttributes=attributes)
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            channel = attributes.get("channel", {}).get("StringValue", "")
            error = str(failure.get("error") or "no error recorded")
            done.append(Replayed(m["MessageId"], str(new_id["MessageId"]), channel, error))
    return done


# -- score ---------------------------------------------------------------------------------------------


def score_texts(tgt: Target, texts: Sequence[str]) -> list[tuple[str, Any]]:
    """Each text with its prediction from the live endpoint, in one call (the fan-in's payload shape)."""
    if not texts:
        raise OperatorError("give at least one text to score")
    instances = [
        {"feedback_id": f"cli-{i}", "text": mask_pii(t), "title": ""} for i, t in enumerate(texts, start=1)
    ]
    batch_id = "cli-" + hashlib.sha256("\n".join(texts).encode()).hexdigest()[:32]
    name = tgt.settings.endpoint_name
    try:
        predictions = tgt.container().scorer.score(batch_id, instances)
    except ClientError as exc:
        # sagemaker-runtime answers ValidationError for a missing endpoint or variant ("Endpoint X of
        # account Y not found."), ModelError when the container failed on the request.
        if is_not_found(exc) or error_code(exc) in {"ValidationError", "ModelError"}:
            raise OperatorError(f"endpoint {name}: {error_code(exc)}: {error_message(exc)}") from exc
        raise
    except (DependencyUnavailableError, ResourceNotFoundError) as exc:
        raise OperatorError(f"endpoint {name}: {exc}") from exc
    return list(zip(texts, predictions, strict=True))
