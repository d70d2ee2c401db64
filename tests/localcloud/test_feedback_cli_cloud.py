"""``reviewsense feedback`` and ``reviewsense score`` as a user runs them, against ``reviewsense local up``.

A separate local cloud process serves the small linear model of ``reviewsense/localmodel.py``
(``training/inference.py`` with numbers written by hand: "terrible" is negative, "great"
positive, anything else a low-confidence tie that goes to human review). Every step is the real
command in a subprocess: tail subscribes a channel-filtered queue, send goes through the signed
``POST /feedback`` and a ``raw/feedback/`` upload and waits for the outcome, tail prints the one chat
alert, show reads the item, review lists and labels the unsure one into the lake (which the ingest
curates), and with the endpoint gone a message reaches the DLQ, which replay-dlq sends back once it
is served again. Then the demo's feedback section runs on the same cloud.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Settings
from reviewsense import localmodel
from tests.helpers.cloud import Cloud, running_cloud
from tests.helpers.paths import ROOT
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.localcloud
EXAMPLES = ROOT / "examples" / "feedback"
S = Settings()


def serve(cloud: Cloud) -> None:
    localmodel.serve(cloud.endpoint, S, ROOT, "feedback-cli-test")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    home = tmp_path_factory.mktemp("feedback-cli")
    with running_cloud(home, REVIEWSENSE_LOCAL_QUEUE_VISIBILITY_TIMEOUT_S="2") as started:
        serve(started)
        yield started


def run(cloud: Cloud, *args: str) -> Any:
    out = cloud.cli(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def accepted_ids(stdout: str) -> list[str]:
    (line,) = [x for x in stdout.splitlines() if x.startswith("accepted ")]
    return re.findall(r"[0-9a-f]{32}", line.split("(feedback ids:")[1])


def test_send_tail_show_review_and_replay_with_the_commands(cloud: Cloud, tmp_path: Path) -> None:
    subscribed = run(cloud, "feedback", "tail", "--channel", "chat", "--seconds", "0")
    assert (
        "/reviewsense-local-alerts-tail-chat to the alerts topic (filter: channel=chat)" in subscribed.stderr
    )

    chat = run(cloud, "feedback", "send", str(EXAMPLES / "chat" / "conversations.json"), "--channel", "chat",
               "--via", "api", "--wait", "--timeout", "120")  # fmt: skip
    negative, positive = accepted_ids(chat.stdout)
    assert f"  {negative}: negative" in chat.stdout and ", alert=single" in chat.stdout
    assert f"  {positive}: positive" in chat.stdout
    email = run(cloud, "feedback", "send", str(EXAMPLES / "email" / "torn-dress.eml"), "--channel", "email",
                "--via", "upload", "--wait", "--timeout", "120")  # fmt: skip
    assert "via upload: raw/feedback/email/torn-dress.eml" in email.stdout
    (email_id,) = accepted_ids(email.stdout)
    assert f"  {email_id}: negative" in email.stdout

    tail = run(cloud, "feedback", "tail", "--channel", "chat", "--max", "1", "--seconds", "60")
    rows = tail.stdout.splitlines()
    assert rows[0].split() == ["published", "kind", "severity", "channel", "product", "feedback", "excerpt"]
    assert len(rows) == 2 and rows[1].split()[1:6] == ["single", "high", "chat", "1094", negative]
    assert "card [CARD]" in rows[1] and "4111" not in tail.stdout
    assert run(cloud, "feedback", "tail", "--channel", "chat", "--seconds", "1").stderr.endswith(
        "(0 alerts)\n"
    )

    item = json.loads(run(cloud, "feedback", "show", negative).stdout)
    assert (item["id"], item["channel"], item["label"], item["alert"]) == (
        negative,
        "chat",
        "negative",
        "single",
    )
    assert set(item["probabilities"]) == {"negative", "neutral", "positive"}
    missing = cloud.cli("feedback", "show", "0" * 32)
    assert missing.returncode == 3
    assert missing.stderr == f"error: no feedback {'0' * 32} in reviewsense-local-feedback\n"

    unsure = tmp_path / "unsure.json"
    unsure.write_text(
        json.dumps([{"post_id": "p-1", "author": "@a", "product_id": "862", "text": "hmm, a jumper"}])
    )
    sent = run(cloud, "feedback", "send", str(unsure), "--channel", "social", "--wait", "--timeout", "120")
    (unsure_id,) = accepted_ids(sent.stdout)
    assert "human review" in sent.stdout
    listed = run(cloud, "feedback", "review").stdout.splitlines()
    assert [line.split()[:3] for line in listed[2:-1]] == [[unsure_id, "social", "862"]]
    labelled = run(cloud, "feedback", "review", unsure_id, "--label", "positive")
    assert labelled.stdout == (
        f"labelled {unsure_id} positive (rating 5) -> raw/human_review/{unsure_id}.jsonl\n"
    )
    assert run(cloud, "feedback", "review").stdout.endswith("(0 rows)\n")
    sql = "SELECT review_id, rating, sentiment FROM reviews WHERE channel = 'human_review'"
    wait_until(lambda: cloud.query(sql) != [], what="the human label ingested")
    assert cloud.query(sql) == [{"review_id": f"human_review-{unsure_id}", "rating": 5, "sentiment": 1}]

    scored = run(cloud, "score", "terrible zip", "great fit", "--json").stdout.splitlines()
    assert [json.loads(line)["label"] for line in scored] == ["negative", "positive"]

    cloud.client("sagemaker").delete_endpoint(EndpointName=S.endpoint_name)
    lost = tmp_path / "lost.json"
    lost.write_text(json.dumps([{"post_id": "p-2", "author": "@b", "text": "terrible"}]))
    (lost_id,) = accepted_ids(run(cloud, "feedback", "send", str(lost), "--channel", "social").stdout)
    wait_until(lambda: cloud.waiting(S.feedback_dlq) == 1, what="the message in the DLQ")
    serve(cloud)
    replayed = run(cloud, "feedback", "replay-dlq").stdout.splitlines()
    assert replayed[-1] == "(1 row)" and len(replayed) == 4 and replayed[2].split()[2] == "social"
    again = run(cloud, "feedback", "send", str(lost), "--channel", "social", "--wait", "--timeout", "120")
    assert f"  {lost_id}: negative" in again.stdout
    assert cloud.waiting(S.feedback_dlq) == 0


def test_the_demo_feedback_section_on_the_same_cloud(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reviewsense import target as targets
    from reviewsense.demo import FEEDBACK_PLAN, run_feedback_part

    monkeypatch.setenv("REVIEWSENSE_HOME", str(cloud.home))
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint)
    assert run_feedback_part(targets.resolve(home=cloud.home)) == 0
    out = capsys.readouterr().out
    assert out.count("  sent ") == len(FEEDBACK_PLAN)
    assert "malformed/email-empty.eml (email) via api: refused: HTTP 400: body is empty" in out
    for reason in ("missing_field", "unlabelled_transcript", "bad_json"):
        assert f"quarantined ({reason}" in out
    assert "the chat-only subscriber received 1: ['chat']" in out
    assert "== Predictions (Glue table predictions): feedback per channel and label ==" in out
