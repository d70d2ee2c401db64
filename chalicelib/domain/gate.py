"""The quality gate: may a candidate model replace the champion?

A candidate is deployed only when its macro-F1 and negative-class recall reach the configured floors
AND it is not worse than the current approved model on the same test split beyond a tolerance. The
decision and every reason behind it are returned, so a rejected candidate is registered with them.
Pure: works on the ``evaluation.json`` documents written by ``training/evaluate.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateConfig:
    min_macro_f1: float = 0.60
    min_negative_recall: float = 0.55
    #: How much worse than the champion (absolute, per metric) a candidate may be and still pass.
    tolerance: float = 0.01

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GateConfig:
        return cls(
            **{
                k: float(values[k])
                for k in ("min_macro_f1", "min_negative_recall", "tolerance")
                if k in values
            }
        )


@dataclass(frozen=True)
class GateDecision:
    approved: bool
    reasons: list[str] = field(default_factory=list)
    candidate: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] | None = None
    #: One short code per reason (``macro_f1_below_floor`` ...): what fits in registry metadata.
    codes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The model package approval status this decision maps to."""
        return "Approved" if self.approved else "Rejected"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def headline(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The numbers the gate looks at, from an ``evaluation.json`` document."""
    per_class = evaluation.get("per_class", {})
    return {
        "macro_f1": float(evaluation["macro_f1"]),
        "accuracy": float(evaluation.get("accuracy", 0.0)),
        "negative_recall": float(per_class.get("negative", {}).get("recall", 0.0)),
    }


def decide(
    candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, config: GateConfig
) -> GateDecision:
    cand = headline(candidate)
    champ = headline(champion) if champion else None
    reasons: list[str] = []
    codes: list[str] = []
    if cand["macro_f1"] < config.min_macro_f1:
        reasons.append(f"macro_f1 {cand['macro_f1']:.4f} is below the floor {config.min_macro_f1:.4f}")
        codes.append("macro_f1_below_floor")
    if cand["negative_recall"] < config.min_negative_recall:
        floor = config.min_negative_recall
        reasons.append(f"negative recall {cand['negative_recall']:.4f} is below the floor {floor:.4f}")
        codes.append("negative_recall_below_floor")
    if champ is not None:
        for metric in ("macro_f1", "negative_recall"):
            if cand[metric] < champ[metric] - config.tolerance:
                reasons.append(
                    f"{metric} {cand[metric]:.4f} is worse than the champion's {champ[metric]:.4f} "
                    f"by more than {config.tolerance:.4f}"
                )
                codes.append(f"{metric}_worse_than_champion")
    if not reasons:
        reasons.append(
            "passes the floors" + (" and is not worse than the champion" if champ else " (no champion)")
        )
        codes.append("passed" if champ else "passed_no_champion")
        return GateDecision(True, reasons, cand, champ, codes)
    return GateDecision(False, reasons, cand, champ, codes)
