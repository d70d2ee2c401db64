"""model.tar.gz packing and loading from a directory or an archive."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import ROOT
from training import model_io


def test_pack_puts_files_at_the_archive_root(trained: dict[str, Any], tmp_path: Path) -> None:
    tar = model_io.pack_model(trained["model_dir"], tmp_path / "model.tar.gz")
    with tarfile.open(tar) as fh:
        names = set(fh.getnames())
    assert {
        "label_map.json",
        "decision.json",
        "metrics.json",
        "code/inference.py",
        "model.safetensors",
    } <= names


def test_resolve_and_load_from_archive(trained: dict[str, Any], tmp_path: Path) -> None:
    tar = model_io.pack_model(trained["model_dir"], tmp_path / "model.tar.gz")
    first = model_io.resolve_model_dir(tar, cache_dir=tmp_path / "cache")
    assert (first / "label_map.json").is_file()
    assert model_io.resolve_model_dir(tar, cache_dir=tmp_path / "cache") == first  # cached by content hash
    assert model_io.read_json(first, model_io.LABEL_MAP_FILE)["labels"] == ["negative", "neutral", "positive"]
    predictor = model_io.load_predictor(tar)
    assert predictor.predict(["love it"])[0]["label"] in predictor.labels
    assert model_io.resolve_model_dir(trained["model_dir"]) == trained["model_dir"]


def test_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        model_io.resolve_model_dir(tmp_path / "missing.tar.gz")
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        model_io.pack_model(tmp_path)


def test_model_io_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = "import sys, training.model_io; print('torch' in sys.modules, 'transformers' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert done.stdout.split() == ["False", "False"]
