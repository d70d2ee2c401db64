"""PII never stored, logged or alerted in clear: the corpus through every channel and entry point, grepped.

``reviewsense local up --no-persist`` runs as a separate process, as users run it, so everything its
Lambdas and the local endpoint print lands in one log file. The PII fixtures of every channel
(``tests/fixtures/feedback/<channel>/with_pii.*``, built from ``pii_corpus.json``) go in through all
three entry points: a message sent straight to the feedback queue, a SigV4-signed ``POST /feedback``
and a file uploaded under ``raw/feedback/<channel>/``. "charged twice" becomes "charged twice
terrible" so that the served linear model scores the card sentences negative (single and burst alerts)
and leaves the rest at one third each (the human-review queue). Malformed messages carrying PII
(truncated JSON, a body that is not an envelope, base64 of a broken transcript, an unknown channel,
a broken e-mail upload) take the quarantine path.

Once every item is scored or quarantined, each original PII string and its simple variants
(lower-case; without spaces and dashes; digits only for cards, phones and IBANs) is searched for in
everything the system wrote: every S3 object of every bucket except the uploads under ``raw/``
(Parquet also decoded with pyarrow, data-capture payloads also base64-decoded), every item of every
DynamoDB table, every message left on any queue (review queue, DLQs) and every alert an unfiltered
subscriber received, CloudWatch Logs, and every file under the local cloud's home (the process's log,
``logs/lambda.jsonl``, the endpoint's variant logs). The uploads under ``raw/`` are the customer's
own input, kept as the raw record of the lake; the same grep finds the PII there, which shows the
search works. The Lambdas log at DEBUG here (the local stage logs at WARNING, dev at INFO).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from chalicelib.config import Settings
from chalicelib.domain.feedback import parse_feedback
from reviewsense import localmodel
from reviewsense.signedhttp import local_api_url, post_json
from reviewsense.stageconfig import stage_environment
from tests.helpers.cloud import Cloud, running_cloud
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud
FIXTURES = ROOT / "tests" / "fixtures" / "feedback"
WITH_PII = {
    "email": "with_pii.eml",
    "chat": "with_pii.json",
    "call": "with_pii.txt",
    "app": "with_pii.json",
    "social": "with_pii.json",
    "review": "with_pii.csv",
}


def corpus() -> list[dict[str, str]]:
    return list(json.loads((FIXTURES / "pii_corpus.json").read_text()))


def negative(body: bytes) -> bytes:
    return body.replace(b"charged twice", b"charged twice terrible").replace(
        b"Charged twice", b"Charged twice terrible"
    )


def payload(channel: str) -> bytes:
    return negative((FIXTURES / channel / WITH_PII[channel]).read_bytes())


def needles() -> dict[str, str]:
    """Each string searched for -> the corpus value it comes from."""
    out: dict[str, str] = {}
    for entry in corpus():
        value, kind = entry["value"], entry["kind"]
        variants = {value, value.lower(), value.upper(), re.sub(r"[ -]", "", value)}
        if kind in ("card", "phone", "iban"):
            variants.add(re.sub(r"\D", "", value))
        for variant in variants:
            out.setdefault(variant, value)
    return out


# -- the local cloud as a separate process ------------------------------------------------------------


class PiiCloud(Cloud):
    """``reviewsense local up --no-persist``: no state snapshot on disk (that is moto's copy of S3,
    uploads included; S3 and DynamoDB are read through their APIs instead)."""

    settings = Settings()

    def feedback_items(self) -> list[dict[str, Any]]:
        pages = self.client("dynamodb").get_paginator("scan").paginate(TableName=self.settings.feedback_table)
        return [item for page in pages for item in page["Items"] if "#" not in item["id"]["S"]]

    def objects(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PiiCloud]:
    home = tmp_path_factory.mktemp("pii-cloud")
    env = {"REVIEWSENSE_LOCAL_QUEUE_VISIBILITY_TIMEOUT_S": "2", "POWERTOOLS_LOG_LEVEL": "DEBUG"}
    with running_cloud(home, "--no-persist", cls=PiiCloud, timeout_s=120, **env) as started:
        assert isinstance(started, PiiCloud)
        started.settings = Settings.from_env(stage_environment(ROOT, "local"))
        yield started


# -- what goes in ---------------------------------------------------------------------------------------


@dataclass
class Sent:
    records: int = 0
    quarantined_messages: int = 0
    uploads: list[str] = field(default_factory=list)

    def expect(self, channel: str, body: bytes) -> None:
        parsed = parse_feedback(channel, body, source="x", received_at="2026-11-29T00:00:00Z", salt="s")
        self.records += len(parsed.records)
        self.quarantined_messages += bool(parsed.rejected)


def inline(channel: str, body: bytes) -> dict[str, Any]:
    """The envelope of a payload: JSON channels as JSON, the others as text."""
    if channel in ("chat", "app", "social"):
        return {"channel": channel, "body": json.loads(body)}
    return {"channel": channel, "body": body.decode("utf-8")}


def send_everything(cloud: PiiCloud) -> Sent:
    s, sqs, s3 = cloud.settings, cloud.client("sqs"), cloud.client("s3")
    sent = Sent()
    queue = cloud.url(s.feedback_queue)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    api = local_api_url(json.loads((cloud.home / "endpoint.json").read_text()))
    for channel, name in WITH_PII.items():
        body = payload(channel)
        # 1. straight to the queue
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(inline(channel, body)))
        sent.expect(channel, body)
        # 2. signed POST /feedback
        status, answer = post_json(f"{api}feedback", inline(channel, body), session, s.region)
        assert status == 202, (channel, status, answer)
        sent.expect(channel, body)
        # 3. an upload under raw/feedback/<channel>/
        key = f"{s.feedback_raw_prefix}{channel}/pii-{name}"
        s3.put_object(Bucket=s.lake_bucket, Key=key, Body=body)
        sent.uploads.append(key)
        sent.expect(channel, body)
    # Poison with PII in it: each is quarantined with a (masked) excerpt of what was sent.
    chat = payload("chat").decode("utf-8")
    broken_call = b"Call-Id: X\n" + payload("call")[: len(payload("call")) // 2].replace(
        b"Customer:", b"Cust:"
    )
    poison = [
        json.dumps({"channel": "chat", "body": chat[: len(chat) // 2]}),  # truncated JSON
        payload("email").decode("utf-8"),  # not an envelope at all
        json.dumps({"channel": "call", "body_base64": base64.b64encode(broken_call).decode()}),
        json.dumps({"channel": "fax", "body": payload("app").decode("utf-8")}),  # unknown channel
    ]
    for body_text in poison:
        sqs.send_message(QueueUrl=queue, MessageBody=body_text)
        sent.quarantined_messages += 1
    broken = payload("email").replace(b"Content-Type: text/plain", b"Content-Type: multipart/mixed")
    key = f"{s.feedback_raw_prefix}email/pii-broken.eml"
    s3.put_object(Bucket=s.lake_bucket, Key=key, Body=broken)
    sent.uploads.append(key)
    sent.expect("email", broken)
    return sent


# -- what came out ----------------------------------------------------------------------------------------


@dataclass
class Searched:
    """Every text the system wrote, by where it was found."""

    texts: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, where: str, kind: str, text: str) -> None:
        self.texts[where] = text
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def hits(self, strings: dict[str, str]) -> list[str]:
        return [
            f"{where}: {needle!r} (from {origin!r})"
            for where, text in self.texts.items()
            for needle, origin in strings.items()
            if needle in text
        ]


def decoded(key: str, data: bytes) -> list[str]:
    """The object's bytes as text, plus what they decode to (Parquet rows, gzip, base64 capture data)."""
    texts = [data.decode("utf-8", "replace")]
    if key.endswith(".parquet"):
        texts.append(json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=str, ensure_ascii=False))
    if data[:2] == b"\x1f\x8b":
        texts.append(gzip.decompress(data).decode("utf-8", "replace"))
    if key.startswith("capture/"):
        for line in data.decode("utf-8").splitlines():
            for side in json.loads(line)["captureData"].values():
                if side["encoding"] == "BASE64":
                    texts.append(base64.b64decode(side["data"]).decode("utf-8", "replace"))
                else:
                    texts.append(json.dumps(json.loads(side["data"]), ensure_ascii=False))
    return texts


def s3_versions(cloud: PiiCloud) -> dict[tuple[str, str], str]:
    """(bucket, key) -> ETag of every object now."""
    s3, out = cloud.client("s3"), {}
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            out.update({(bucket, o["Key"]): o["ETag"] for o in page.get("Contents", [])})
    return out


def _s3(cloud: PiiCloud, found: Searched, before: dict[tuple[str, str], str]) -> None:
    s3 = cloud.client("s3")
    for (bucket, key), etag in sorted(s3_versions(cloud).items()):
        if before.get((bucket, key)) == etag:
            found.counts["s3 objects from before the feedback (skipped)"] = (
                found.counts.get("s3 objects from before the feedback (skipped)", 0) + 1
            )
            continue
        if bucket == cloud.settings.lake_bucket and key.startswith("raw/"):
            continue
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        kind = key.split("/", 1)[0]
        found.add(f"s3://{bucket}/{key}", f"s3 {kind}/ objects", "\n".join(decoded(key, data)))


def _dynamodb(cloud: PiiCloud, found: Searched) -> None:
    ddb = cloud.client("dynamodb")
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for i, item in enumerate(page["Items"]):
                found.add(f"dynamodb {table} item {i}: {item.get('id')}", "dynamodb items", json.dumps(item))


def _queues(cloud: PiiCloud, found: Searched, alerts_url: str) -> None:
    for m in cloud.drain(alerts_url):
        found.add(f"alert {m['MessageId']}", "alerts received", m["Body"])
    for url in cloud.client("sqs").list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        for m in cloud.drain(url) if url != alerts_url else []:
            found.add(f"sqs {name} {m['MessageId']}", f"messages on {name}", json.dumps(m))


def _logs(cloud: PiiCloud, found: Searched) -> None:
    logs = cloud.client("logs")
    for group in logs.describe_log_groups().get("logGroups", []):
        name = group["logGroupName"]
        for e in logs.filter_log_events(logGroupName=name).get("events", []):
            found.add(f"cloudwatch {name} {e['eventId']}", "cloudwatch log events", e["message"])
    for path in sorted(p for p in cloud.home.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        found.add(f"file {path.relative_to(cloud.home)}", "files under the home", text)
        found.counts["lines in those files"] = found.counts.get("lines in those files", 0) + len(
            text.splitlines()
        )


def everything_written(cloud: PiiCloud, alerts_url: str, before: dict[tuple[str, str], str]) -> Searched:
    found = Searched()
    _s3(cloud, found, before)
    _dynamodb(cloud, found)
    _queues(cloud, found, alerts_url)
    _logs(cloud, found)
    return found


def test_the_pii_corpus_through_every_channel_and_entry_point_is_written_nowhere(cloud: PiiCloud) -> None:
    s = cloud.settings
    alerts_url = localmodel.subscribe(cloud.endpoint, s.alerts_topic_arn, "pii-alerts")
    # The endpoint with the linear model and data capture of inputs and outputs, as the rollout sets it.
    localmodel.serve(cloud.endpoint, s, ROOT, "pii-test", capture=True, timeout_s=120)
    # The code the local cloud published and the model archive: there before any feedback, not searched.
    before = s3_versions(cloud)

    sent = send_everything(cloud)

    def settled() -> bool:
        items = cloud.feedback_items()
        quarantined = cloud.objects(s.lake_bucket, s.feedback_quarantine_prefix)
        return (
            sum(1 for i in items if "completed_at" in i) == sent.records
            and len(quarantined) == sent.quarantined_messages
            and cloud.waiting(s.feedback_queue) == 0
        )

    wait_until(settled, timeout_s=240, what=f"{sent.records} scored, {sent.quarantined_messages} quarantined")
    wait_until(lambda: cloud.objects(s.lake_bucket, "capture/"), what="data capture flushed")
    time.sleep(2)  # the capture writer flushes every second: let the last batch's lines land too
    assert cloud.waiting(s.feedback_dlq) == 0

    found = everything_written(cloud, alerts_url, before)
    summary = json.dumps(found.counts, sort_keys=True)
    # The search sees what the system wrote: masked texts, alerts, reviews, capture, Parquet, logs.
    assert found.counts.get("alerts received", 0) > 0, summary
    assert found.counts.get(f"messages on {s.review_queue}", 0) > 0, summary
    for kind in ("s3 curated/ objects", "s3 capture/ objects", "s3 quarantine/ objects", "dynamodb items"):
        assert found.counts.get(kind, 0) > 0, summary
    for placeholder in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]"):
        assert any(placeholder in t for w, t in found.texts.items() if w.startswith("alert")), placeholder
        assert any(placeholder in t for w, t in found.texts.items() if "/capture/" in w), placeholder
    assert any("fanned in a batch" in t for w, t in found.texts.items() if w == "file test.log"), summary

    print(f"searched for {len(needles())} strings: {summary}")
    hits = found.hits(needles())
    assert hits == [], f"PII found in clear ({len(hits)} hits); searched {summary}:\n" + "\n".join(hits)

    # The same grep over the customer's own uploads (the raw record, kept as sent) finds every value.
    raw = Searched()
    for key in sent.uploads:
        body = cloud.client("s3").get_object(Bucket=s.lake_bucket, Key=key)["Body"].read()
        raw.add(key, "raw uploads", body.decode("utf-8"))
    missing = [e["value"] for e in corpus() if not any(e["value"] in t for t in raw.texts.values())]
    assert missing == [], f"the grep missed PII in the raw uploads: {missing}"
