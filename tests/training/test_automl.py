"""Candidate search: leaderboard ranked by validation macro-F1, best model copied and packed."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from training import automl


def test_search_ranks_candidates_and_packs_the_best(
    kaggle_csv: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    spec = [
        {"name": "lin", "kind": "linear", "params": {"c": 2.0, "min_df": 1}},
        {
            "name": "tiny",
            "kind": "transformer",
            "params": {
                "model_name_or_path": str(tiny_model_dir),
                "max_steps": 4,
                "batch_size": 8,
                "max_seq_length": 32,
                "ensemble_linear": False,
            },
        },
    ]
    summary: dict[str, Any] = automl.main(
        [
            "--data",
            str(kaggle_csv),
            "--candidates",
            json.dumps(spec),
            "--output-dir",
            str(tmp_path),
            "--time-budget-minutes",
            "10",
        ]
    )
    board = summary["leaderboard"]
    assert [r["name"] for r in board] == sorted(
        ["lin", "tiny"], key=lambda n: -next(r["val_macro_f1"] for r in board if r["name"] == n)
    )
    assert board[0]["rank"] == 1 and summary["best"] == board[0]["name"]
    assert (tmp_path / "best" / "label_map.json").is_file()
    assert (tmp_path / "best" / "model.tar.gz").is_file()
    with (tmp_path / "leaderboard.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 2
    assert json.loads((tmp_path / "leaderboard.json").read_text())["best"] == summary["best"]


def test_spent_budget_skips_candidates(
    features_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = automl.main(
        [
            "--train",
            str(features_dir / "train"),
            "--validation",
            str(features_dir / "validation"),
            "--test",
            str(features_dir / "test"),
            "--candidates",
            "linear",
            "--output-dir",
            str(tmp_path),
            "--time-budget-minutes",
            "0",
            "--json",
        ]
    )
    assert summary["leaderboard"][0]["status"] == "skipped: time budget"
    assert summary["best"] is None
    assert json.loads(capsys.readouterr().out) == summary


def test_unknown_candidate_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown candidate"):
        automl.resolve_candidates("linear,nope")
    assert [c["name"] for c in automl.resolve_candidates("linear, minilm-demo")] == ["linear", "minilm-demo"]


def test_every_built_in_candidate_is_a_valid_training_config() -> None:
    from training.automl import CANDIDATES
    from training.train_config import TrainConfig

    for name, spec in CANDIDATES.items():
        if spec["kind"] == "transformer":
            cfg = TrainConfig(**spec["params"])
            assert cfg.max_steps >= 0 and cfg.learning_rate > 0, name
    assert {"mpnet-3ep", "mpnet-rating-2ep"} <= set(CANDIDATES)
