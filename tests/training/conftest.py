"""Shared fixtures for the training tests: a Kaggle-format fixture CSV, a tiny BERT, featurized splits.

Everything is made in the test session (no downloads): the tiny model is a 2-layer, 32-wide BERT built
from a BertConfig with the vocabulary of the packaged all-MiniLM-L6-v2 tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.reviews import make_kaggle_frame
from tests.helpers.tinymodels import build_tiny_bert


@pytest.fixture(scope="session")
def kaggle_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "reviews.csv.gz"
    make_kaggle_frame().to_csv(path, index=True)  # the Kaggle file starts with an unnamed index column
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def features_dir(tmp_path_factory: pytest.TempPathFactory, kaggle_csv: Path, tiny_model_dir: Path) -> Path:
    from training import featurize

    out = tmp_path_factory.mktemp("features")
    featurize.main(
        [
            "--input",
            str(kaggle_csv),
            "--output-dir",
            str(out),
            "--tokenizer",
            str(tiny_model_dir),
            "--max-seq-length",
            "32",
            "--validation-fraction",
            "0.2",
            "--test-fraction",
            "0.2",
            "--event-time",
            "2024-05-06T07:08:09",
        ]
    )
    return out


def _train_args(features: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--train",
        str(features / "train"),
        "--validation",
        str(features / "validation"),
        "--test",
        str(features / "test"),
        "--model-name-or-path",
        str(model),
        "--model-dir",
        str(out / "model"),
        "--output-data-dir",
        str(out / "output"),
        "--max-seq-length",
        "32",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--max-steps",
        "0",
        "--logging-steps",
        "2",
        "--learning-rate",
        "1e-3",
        "--progress-bar",
        "false",
        "--linear-c",
        "1.0",
        *extra,
    ]


@pytest.fixture(scope="session")
def train_args() -> Any:
    """train.py argv for the fixture splits and tiny model: ``train_args(features, model, out, ...)``."""
    return _train_args


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, features_dir: Path, tiny_model_dir: Path
) -> dict[str, Any]:
    """One end-to-end train.py run shared by the tests that read its outputs."""
    from training import train

    out = tmp_path_factory.mktemp("run")
    metrics = train.main(_train_args(features_dir, tiny_model_dir, out))
    return {"metrics": metrics, "model_dir": out / "model", "output_dir": out / "output"}
