"""The local scheduler fires rate() rules with AWS's Scheduled Event shape."""

from __future__ import annotations

from typing import Any

from reviewsense.localcloud.scheduler import LocalScheduler, rate_seconds
from tests.helpers.waiting import wait_until


def test_rate_expressions() -> None:
    assert rate_seconds("rate(2 minutes)") == 120
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(7 days)") == 7 * 86400
    assert rate_seconds("cron(0 12 * * ? *)") is None


def test_fires_each_rate_rule_with_a_scheduled_event() -> None:
    fired: list[tuple[str, dict[str, Any]]] = []
    scheduler = LocalScheduler(
        {"fn-a": "rate(1 minute)", "fn-cron": "cron(0 12 * * ? *)"},
        lambda fn, event: fired.append((fn, event)),
        "us-east-1",
        "123456789012",
        speedup=120.0,  # one minute -> 0.5 s
    )
    scheduler.start()
    try:
        wait_until(lambda: fired, timeout_s=10, what="a scheduled event")
    finally:
        scheduler.stop()
    function, event = fired[0]
    assert function == "fn-a"
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert {f for f, _ in fired} == {"fn-a"}
