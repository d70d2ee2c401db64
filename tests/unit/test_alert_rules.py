"""The alert decision rules: thresholds, severity bands, human review, burst windows and SNS attributes."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib.domain.alerts import (
    AlertKind,
    AlertPolicy,
    Decision,
    Severity,
    alert_attributes,
    alert_kind,
    burst_window,
    decide,
    is_burst,
)
from chalicelib.domain.feedback import FeedbackRecord

POLICY = AlertPolicy()


def probs(negative: float, neutral: float, positive: float) -> dict[str, float]:
    return {"negative": negative, "neutral": neutral, "positive": positive}


@pytest.mark.parametrize(
    ("label", "probabilities", "alert", "severity", "to_review"),
    [
        ("negative", probs(0.95, 0.03, 0.02), True, Severity.HIGH, False),
        ("negative", probs(0.90, 0.05, 0.05), True, Severity.HIGH, False),  # the high band includes 0.9
        ("negative", probs(0.89, 0.06, 0.05), True, Severity.MEDIUM, False),
        ("negative", probs(0.70, 0.20, 0.10), True, Severity.MEDIUM, False),  # at the threshold: alerts
        ("negative", probs(0.69, 0.21, 0.10), False, None, False),
        ("negative", probs(0.59, 0.21, 0.20), False, None, True),  # unsure: review, no alert
        ("neutral", probs(0.45, 0.50, 0.05), False, None, True),
        ("neutral", probs(0.30, 0.60, 0.10), False, None, False),  # max exactly at review threshold
        ("positive", probs(0.01, 0.04, 0.95), False, None, False),
    ],
)
def test_decide(
    label: str, probabilities: dict[str, float], alert: bool, severity: Severity | None, to_review: bool
) -> None:
    decision = decide(label, probabilities, POLICY)
    assert (decision.alert, decision.severity, decision.to_review) == (alert, severity, to_review)
    assert decision.negative_probability == probabilities["negative"]
    assert decision.confidence == max(probabilities.values())
    assert decision.label == label


def test_a_model_without_a_negative_class_never_alerts() -> None:
    decision = decide("positive", {"positive": 0.8, "other": 0.2}, POLICY)
    assert (decision.alert, decision.negative_probability) == (False, 0.0)


def test_thresholds_come_from_the_policy() -> None:
    strict = AlertPolicy(alert_threshold=0.8, review_threshold=0.75, high_threshold=0.95)
    assert decide("negative", probs(0.79, 0.2, 0.01), strict).alert is False
    assert decide("negative", probs(0.8, 0.2, 0.0), strict).severity is Severity.MEDIUM
    assert decide("neutral", probs(0.3, 0.7, 0.0), strict).to_review is True


@pytest.mark.parametrize(
    ("label", "probabilities", "message"),
    [
        ("negative", {}, "predicted label"),
        ("negative", {"positive": 1.0}, "predicted label"),
        ("negative", {"negative": 1.2}, "between 0 and 1"),
        ("negative", {"negative": -0.1}, "between 0 and 1"),
        ("negative", {"negative": float("nan")}, "between 0 and 1"),
        ("negative", {"negative": True}, "between 0 and 1"),
    ],
)
def test_decide_rejects_answers_that_break_the_endpoint_contract(
    label: str, probabilities: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decide(label, probabilities, POLICY)


def test_policy_defaults_and_mapping() -> None:
    assert AlertPolicy() == AlertPolicy(0.7, 0.6, 0.9, 5, 900)
    assert AlertPolicy.from_mapping({}) == AlertPolicy()
    assert AlertPolicy.from_mapping(
        {"alert_threshold": "0.8", "review_threshold": 0.5, "burst_count": "3", "burst_window_s": 60.0}
    ) == AlertPolicy(alert_threshold=0.8, review_threshold=0.5, burst_count=3, burst_window_s=60)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alert_threshold": "high"}, "alert_threshold must be a number"),
        ({"alert_threshold": 1.5}, "alert_threshold must be a probability"),
        ({"review_threshold": -0.1}, "review_threshold must be a probability"),
        ({"high_threshold": 0.6}, "high_threshold must not be below alert_threshold"),
        ({"burst_count": "2.5"}, "burst_count must be a whole number"),
        ({"burst_count": True}, "burst_count must be a whole number"),
        ({"burst_count": 1}, "burst_count must be an integer of at least 2"),
        ({"burst_window_s": 0}, "burst_window_s must be an integer of at least 1"),
        ({"burst_size": 3}, "unknown alert policy settings: burst_size"),
    ],
)
def test_policy_rejects_bad_settings(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertPolicy.from_mapping(values)


@pytest.mark.parametrize(
    ("received_at", "window_s", "key"),
    [
        ("2026-11-29T12:44:59Z", 900, "2026-11-29T12:30:00Z"),
        ("2026-11-29T12:45:00Z", 900, "2026-11-29T12:45:00Z"),
        ("2026-11-29T12:59:59.999+00:00", 900, "2026-11-29T12:45:00Z"),
        ("2026-11-29T13:59:59+01:00", 900, "2026-11-29T12:45:00Z"),  # offsets are turned into UTC
        ("2026-11-29T12:44:59Z", 3600, "2026-11-29T12:00:00Z"),
        ("2026-11-29T23:59:00Z", 86400, "2026-11-29T00:00:00Z"),
    ],
)
def test_burst_window_keys(received_at: str, window_s: int, key: str) -> None:
    assert burst_window(received_at, window_s) == key


def test_burst_window_needs_a_time_zone_and_a_positive_window() -> None:
    with pytest.raises(ValueError, match="time zone"):
        burst_window("2026-11-29T12:00:00", 900)
    with pytest.raises(ValueError, match="window_s"):
        burst_window("2026-11-29T12:00:00Z", 0)


def test_is_burst_from_the_burst_count() -> None:
    assert [is_burst(count, POLICY) for count in (0, 4, 5, 6)] == [False, False, True, True]


def test_exactly_one_burst_alert_when_the_count_reaches_the_burst_count() -> None:
    kinds = [alert_kind(count - 1, count, POLICY) for count in range(1, 10)]
    assert kinds == [AlertKind.SINGLE] * 4 + [AlertKind.BURST] + [AlertKind.SUPPRESSED] * 4


def test_a_count_that_jumps_past_the_burst_count_still_bursts_once() -> None:
    assert [alert_kind(3, 6, POLICY), alert_kind(6, 7, POLICY)] == [AlertKind.BURST, AlertKind.SUPPRESSED]


@pytest.mark.parametrize(("before", "after"), [(-1, 0), (3, 3), (4, 2)])
def test_alert_kind_needs_a_count_that_grew(before: int, after: int) -> None:
    with pytest.raises(ValueError, match="count after"):
        alert_kind(before, after, POLICY)


def test_a_stream_of_negatives_gives_one_burst_per_product_and_window() -> None:
    policy = AlertPolicy(burst_count=3, burst_window_s=600)
    arrivals = [
        ("p1", "2026-11-29T10:00:01Z"),
        ("p1", "2026-11-29T10:01:00Z"),
        ("p2", "2026-11-29T10:02:00Z"),
        ("p1", "2026-11-29T10:03:00Z"),  # third for p1 in 10:00-10:10: the burst
        ("p1", "2026-11-29T10:04:00Z"),  # covered by the burst
        ("p1", "2026-11-29T10:09:59Z"),  # covered by the burst
        ("p1", "2026-11-29T10:10:00Z"),  # a new window: single again
        ("p2", "2026-11-29T10:05:00Z"),
    ]
    counts: Counter[tuple[str, str]] = Counter()
    kinds = []
    for product, at in arrivals:
        key = (product, burst_window(at, policy.burst_window_s))
        before = counts[key]
        counts[key] += 1
        kinds.append(alert_kind(before, counts[key], policy))
    single, burst, suppressed = AlertKind.SINGLE, AlertKind.BURST, AlertKind.SUPPRESSED
    assert kinds == [single, single, single, burst, suppressed, suppressed, single, single]


RECORD = FeedbackRecord(
    feedback_id="f" * 32,
    channel="email",
    received_at="2026-11-29T12:00:00Z",
    customer_ref=None,
    product_id="1078",
    text="The zipper broke.",
    title=None,
    rating=None,
    source="raw/feedback/email/x.eml",
)


def test_alert_attributes_for_sns_filter_policies() -> None:
    decision = decide("negative", probs(0.8, 0.1, 0.1), POLICY)
    assert alert_attributes(RECORD, decision) == {
        "channel": {"DataType": "String", "StringValue": "email"},
        "product_id": {"DataType": "String", "StringValue": "1078"},
        "severity": {"DataType": "String", "StringValue": "medium"},
        "label": {"DataType": "String", "StringValue": "negative"},
        "kind": {"DataType": "String", "StringValue": "single"},
    }


def test_a_missing_product_is_none_and_a_burst_is_high_severity() -> None:
    record = FeedbackRecord(**{**RECORD.to_dict(), "product_id": None, "channel": "chat"})
    decision = Decision("negative", 0.75, 0.75, alert=True, severity=Severity.MEDIUM, to_review=False)
    attributes = alert_attributes(record, decision, kind=AlertKind.BURST)
    assert {name: value["StringValue"] for name, value in attributes.items()} == {
        "channel": "chat",
        "product_id": "none",
        "severity": "high",
        "label": "negative",
        "kind": "burst",
    }
    assert {value["DataType"] for value in attributes.values()} == {"String"}


def test_attribute_values_are_never_empty() -> None:
    record = FeedbackRecord(**{**RECORD.to_dict(), "product_id": ""})
    decision = decide("positive", probs(0.0, 0.1, 0.9), POLICY)
    values = {name: value["StringValue"] for name, value in alert_attributes(record, decision).items()}
    assert (values["product_id"], values["severity"]) == ("none", "none")
