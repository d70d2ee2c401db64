"""The quality gate decision."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.gate import GateConfig, decide


def evaluation(macro_f1: float, neg_recall: float) -> dict[str, Any]:
    return {"macro_f1": macro_f1, "accuracy": 0.9, "per_class": {"negative": {"recall": neg_recall}}}


CONFIG = GateConfig(min_macro_f1=0.6, min_negative_recall=0.5, tolerance=0.01)


def test_first_model_passing_the_floors_is_approved() -> None:
    decision = decide(evaluation(0.7, 0.6), None, CONFIG)
    assert decision.approved and decision.status == "Approved"
    assert decision.champion is None


def test_floors_reject_with_reasons() -> None:
    decision = decide(evaluation(0.55, 0.4), None, CONFIG)
    assert not decision.approved and decision.status == "Rejected"
    assert len(decision.reasons) == 2
    assert "macro_f1 0.5500 is below" in decision.reasons[0]
    assert "negative recall 0.4000 is below" in decision.reasons[1]


def test_worse_than_champion_beyond_tolerance_is_rejected() -> None:
    decision = decide(evaluation(0.70, 0.60), evaluation(0.75, 0.60), CONFIG)
    assert not decision.approved
    assert "worse than the champion" in decision.reasons[0]


def test_within_tolerance_of_champion_passes() -> None:
    assert decide(evaluation(0.745, 0.595), evaluation(0.75, 0.60), CONFIG).approved


def test_config_from_mapping_ignores_unknown_keys() -> None:
    assert GateConfig.from_mapping({"min_macro_f1": "0.7", "other": 1}).min_macro_f1 == 0.7
