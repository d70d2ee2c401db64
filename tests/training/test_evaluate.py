"""evaluate.py on the fixture model: directory, model.tar.gz, raw Kaggle CSV, --json on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from training import evaluate
from training.model_io import pack_model


def test_evaluate_model_dir_on_raw_kaggle_csv(
    trained: dict[str, Any], kaggle_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "evaluation.json"
    preds = tmp_path / "preds.parquet"
    result = evaluate.main(
        [
            "--model",
            str(trained["model_dir"]),
            "--data",
            str(kaggle_csv),
            "--output",
            str(out),
            "--predictions",
            str(preds),
        ]
    )
    assert json.loads(out.read_text()) == result
    assert result["n"] == 88
    for key in (
        "accuracy",
        "macro_f1",
        "balanced_accuracy",
        "per_class",
        "confusion_matrix",
        "majority_baseline",
    ):
        assert key in result
    assert set(result["per_class"]) == {"negative", "neutral", "positive"}
    assert {"precision", "recall", "f1", "support"} <= set(result["per_class"]["neutral"])
    cm = result["confusion_matrix"]["rows_true_cols_pred"]
    assert sum(map(sum, cm)) == 88
    assert result["majority_baseline"]["predict"] == "positive"
    assert preds.is_file()


def test_evaluate_tarball_with_json_prints_exactly_one_object(
    trained: dict[str, Any], features_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tar = pack_model(trained["model_dir"], tmp_path / "model.tar.gz")
    result = evaluate.main(
        [
            "--model",
            str(tar),
            "--data",
            str(features_dir / "test"),
            "--output",
            str(tmp_path / "e.json"),
            "--json",
        ]
    )
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1
    assert json.loads(stdout) == result
    # the metrics of the archive equal those train.py reported for its own test split
    assert abs(result["macro_f1"] - trained["metrics"]["test"]["tuned"]["macro_f1"]) < 1e-9


def test_json_flag_accepts_true_false(
    trained: dict[str, Any], features_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluate.main(
        [
            "--model",
            str(trained["model_dir"]),
            "--data",
            str(features_dir / "test"),
            "--output",
            str(tmp_path / "e.json"),
            "--json",
            "false",
            "--max-rows",
            "5",
        ]
    )
    assert capsys.readouterr().out == ""
