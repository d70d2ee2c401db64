"""The decision rules for scored feedback: alert or not, how severe, human review, burst aggregation.

The fan-in Lambda scores a batch on the endpoint and asks this module, for each prediction, what to do;
it owns the counters and the publishing, this module owns the rules, so they are tested without AWS:

- alert: the predicted label is ``negative`` and P(negative) >= ``alert_threshold``; severity ``high``
  when P(negative) >= ``high_threshold``, else ``medium``;
- human review: the highest class probability is below ``review_threshold`` (the model is unsure);
- bursts: negatives are counted per product in fixed (tumbling) windows of ``burst_window_s`` seconds
  aligned on the Unix epoch (``burst_window``), so a burst that straddles a window boundary is counted
  in two windows. Below ``burst_count`` each alerting negative is a ``single`` alert; the negative
  that makes the count reach ``burst_count`` sends THE ``burst`` alert (once per product and window);
  later ones in that window are ``suppressed`` (the burst alert already covers them).
- SNS message attributes ``channel``, ``product_id``, ``severity``, ``label`` and ``kind`` (String
  values, never empty: SNS rejects empty attribute values, so a missing product is ``none``) let
  subscribers filter with SNS filter policies.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.feedback import FeedbackRecord
from chalicelib.domain.labels import SENTIMENT_NAMES

#: The label that alerts.
NEGATIVE: str = SENTIMENT_NAMES[-1]


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"


class AlertKind(StrEnum):
    """What one alerting negative does, given the per-product count in its window."""

    SINGLE = "single"
    BURST = "burst"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class AlertPolicy:
    """The thresholds, all configurable; ``from_mapping`` builds one from settings values."""

    #: Minimum probability of ``negative`` for a negative prediction to alert.
    alert_threshold: float = 0.7
    #: A prediction whose highest class probability is below this goes to human review.
    review_threshold: float = 0.6
    #: Minimum probability of ``negative`` for an alert to be ``high`` severity (else ``medium``).
    high_threshold: float = 0.9
    #: This many alerting negatives for one product in one window make a burst.
    burst_count: int = 5
    #: The burst window length in seconds.
    burst_window_s: int = 900

    def __post_init__(self) -> None:
        for name in ("alert_threshold", "review_threshold", "high_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        if self.high_threshold < self.alert_threshold:
            raise ValueError("high_threshold must not be below alert_threshold")
        for name, minimum in (("burst_count", 2), ("burst_window_s", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer of at least {minimum}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AlertPolicy:
        """A policy from settings: known keys only, numbers or numeric strings; absent keys keep defaults."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown alert policy settings: {', '.join(unknown)}")
        converted: dict[str, Any] = {}
        for name, value in values.items():
            integer = known[name].type in ("int", int)
            try:
                converted[name] = _as_int(value) if integer else float(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be a {'whole number' if integer else 'number'}") from exc
        return cls(**converted)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a count")
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)


@dataclass(frozen=True)
class Decision:
    """What to do with one prediction."""

    label: str
    #: P(negative) from the endpoint (0.0 when the model has no negative class in its answer).
    negative_probability: float
    #: The highest class probability: how sure the model is of ``label``.
    confidence: float
    alert: bool
    severity: Severity | None
    to_review: bool


def decide(label: str, probabilities: Mapping[str, float], policy: AlertPolicy) -> Decision:
    """Alert? how severe? human review? ``ValueError`` for an answer that breaks the endpoint contract.

    The contract: ``probabilities`` maps class names to probabilities in [0, 1] and holds ``label``.
    """
    if not probabilities or label not in probabilities:
        raise ValueError(f"the probabilities do not include the predicted label {label!r}")
    for name, value in probabilities.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise ValueError(f"probability of {name!r} is not a number between 0 and 1")  # NaN too
    negative = float(probabilities.get(NEGATIVE, 0.0))
    confidence = float(max(probabilities.values()))
    alert = label == NEGATIVE and negative >= policy.alert_threshold
    severity = None
    if alert:
        severity = Severity.HIGH if negative >= policy.high_threshold else Severity.MEDIUM
    return Decision(
        label=label,
        negative_probability=negative,
        confidence=confidence,
        alert=alert,
        severity=severity,
        to_review=confidence < policy.review_threshold,
    )


def burst_window(received_at: str, window_s: int) -> str:
    """The window bucket key of a timestamp: the UTC start of its epoch-aligned window, ISO 8601 ``Z``.

    ``ValueError`` for a timestamp without a time zone or a window shorter than one second.
    """
    if isinstance(window_s, bool) or not isinstance(window_s, int) or window_s < 1:
        raise ValueError("window_s must be a whole number of seconds, at least 1")
    moment = datetime.fromisoformat(received_at)
    if moment.utcoffset() is None:
        raise ValueError(f"received_at has no time zone: {received_at!r}")
    seconds = math.floor(moment.timestamp())
    start = datetime.fromtimestamp(seconds - seconds % window_s, tz=UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_burst(count_in_window: int, policy: AlertPolicy) -> bool:
    """True when a product's alerting negatives in one window reach the burst count."""
    return count_in_window >= policy.burst_count


def alert_kind(count_before: int, count_after: int, policy: AlertPolicy) -> AlertKind:
    """What one more alerting negative does, from its product's window count before and after adding it.

    ``BURST`` exactly once per product and window: for the negative whose update makes the count
    reach (or pass) ``burst_count``. With an atomic counter (one increment per negative, each seen
    once) no two negatives get ``BURST`` in the same window.
    """
    if count_before < 0 or count_after <= count_before:
        raise ValueError("the count after adding a negative must be above the count before it (>= 0)")
    if not is_burst(count_after, policy):
        return AlertKind.SINGLE
    if not is_burst(count_before, policy):
        return AlertKind.BURST
    return AlertKind.SUPPRESSED


def _attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def alert_attributes(
    record: FeedbackRecord, decision: Decision, *, kind: AlertKind = AlertKind.SINGLE
) -> dict[str, dict[str, str]]:
    """SNS ``MessageAttributes`` for the alert about ``record``: what subscribers' filter policies match.

    A burst alert (``kind=BURST``) is ``high`` severity whatever the triggering prediction's band.
    """
    severity = Severity.HIGH if kind is AlertKind.BURST else decision.severity
    return {
        "channel": _attribute(record.channel or "none"),
        "product_id": _attribute(record.product_id or "none"),
        "severity": _attribute(severity.value if severity is not None else "none"),
        "label": _attribute(decision.label or "none"),
        "kind": _attribute(kind.value),
    }
