"""Ensembling model directories: weights tuned on validation, served and evaluated like any model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training import baselines, ensemble, evaluate


def test_weight_grid_covers_the_simplex() -> None:
    grid = ensemble.weight_grid(3, 0.5)
    assert sorted(grid) == sorted(
        [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    )


def test_ensemble_of_transformer_and_linear(
    trained: dict[str, Any], features_dir: Path, tmp_path: Path
) -> None:
    splits = [
        "--train",
        str(features_dir / "train"),
        "--validation",
        str(features_dir / "validation"),
        "--test",
        str(features_dir / "test"),
    ]
    baselines.main(
        [
            *splits,
            "--model-dir",
            str(tmp_path / "lin"),
            "--output-data-dir",
            str(tmp_path / "lo"),
            "--min-df",
            "1",
        ]
    )
    metrics = ensemble.main(
        [
            "--models",
            f"{trained['model_dir']},{tmp_path / 'lin'}",
            *splits[2:],
            "--model-dir",
            str(tmp_path / "ens"),
            "--output-data-dir",
            str(tmp_path / "eo"),
            "--weight-step",
            "0.25",
            "--score-cache",
            str(tmp_path / "scores"),
        ]
    )
    cached = sorted((tmp_path / "scores").glob("*.npy"))
    assert len(cached) == 2 + len(metrics["members"])  # each member on validation, used ones on test
    again = ensemble.main(
        [
            "--models",
            f"{trained['model_dir']},{tmp_path / 'lin'}",
            *splits[2:],
            "--model-dir",
            str(tmp_path / "ens2"),
            "--output-data-dir",
            str(tmp_path / "eo2"),
            "--weight-step",
            "0.25",
            "--score-cache",
            str(tmp_path / "scores"),
        ]
    )
    assert sorted((tmp_path / "scores").glob("*.npy")) == cached
    assert metrics["members_loaded"] == 2 and again["members_loaded"] == 0  # all from the cache
    assert again["test"]["tuned"] == metrics["test"]["tuned"]
    decision = json.loads((tmp_path / "ens" / "decision.json").read_text())
    assert decision["model_type"] == "ensemble"
    assert abs(sum(m["weight"] for m in decision["members"]) - 1.0) < 1e-9
    assert metrics["validation"]["tuned"]["macro_f1"] >= max(metrics["validation"]["members"]) - 1e-9
    result = evaluate.main(
        [
            "--model",
            str(tmp_path / "ens"),
            "--data",
            str(features_dir / "test"),
            "--output",
            str(tmp_path / "e.json"),
        ]
    )
    assert abs(result["macro_f1"] - metrics["test"]["tuned"]["macro_f1"]) < 1e-9
