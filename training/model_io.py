"""Model directory <-> model.tar.gz, and loading a predictor from either.

SageMaker turns SM_MODEL_DIR into ``model.tar.gz`` (files at the archive root, serving code under
``code/``: ``inference.py`` and the ``requirements.txt`` the PyTorch serving container installs before
loading it, because its image has no transformers); evaluate, the candidate search and the local
endpoint accept either form. Cheap to import: torch / transformers are only loaded when a predictor is
built.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.inference import SentimentPredictor

LABEL_MAP_FILE = "label_map.json"
DECISION_FILE = "decision.json"
METRICS_FILE = "metrics.json"
CODE_DIR = "code"
INFERENCE_SOURCE = Path(__file__).with_name("inference.py")
SERVING_REQUIREMENTS = Path(__file__).with_name("serving_requirements.txt")


def install_serving_code(model_dir: str | Path) -> Path:
    """Copy the serving handler to ``<model_dir>/code/inference.py`` and its ``code/requirements.txt``."""
    code = Path(model_dir) / CODE_DIR
    code.mkdir(parents=True, exist_ok=True)
    target = code / "inference.py"
    shutil.copyfile(INFERENCE_SOURCE, target)
    shutil.copyfile(SERVING_REQUIREMENTS, code / "requirements.txt")
    return target


def pack_model(model_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``model.tar.gz`` with the directory's files at the archive root (the SageMaker layout)."""
    src = Path(model_dir)
    if not (src / LABEL_MAP_FILE).exists():
        raise FileNotFoundError(f"{src} is not a model directory (no {LABEL_MAP_FILE})")
    out = Path(output) if output is not None else src.parent / "model.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(src.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.resolve() != out.resolve():
                tar.add(path, arcname=str(path.relative_to(src)))
    return out


def is_archive(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith((".tar.gz", ".tgz")) and Path(path).is_file()


def _cache_root() -> Path:
    return Path(tempfile.gettempdir()) / "reviewsense-models"


def resolve_model_dir(path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Return a model directory: ``path`` itself, or where its model.tar.gz was extracted (cached by hash)."""
    p = Path(path)
    if p.is_dir():
        if not (p / LABEL_MAP_FILE).exists() and (p / "model.tar.gz").is_file():
            return resolve_model_dir(p / "model.tar.gz", cache_dir)
        return p
    if not is_archive(p):
        raise FileNotFoundError(f"no model directory or model.tar.gz at {p}")
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    target = Path(cache_dir or _cache_root()) / digest.hexdigest()[:16]
    if (target / LABEL_MAP_FILE).exists():
        return target
    tmp = Path(tempfile.mkdtemp(prefix="extract-", dir=target.parent if target.parent.exists() else None))
    with tarfile.open(p, "r:gz") as tar:
        tar.extractall(tmp, filter="data")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(tmp), target)
    return target


def read_json(model_dir: str | Path, name: str) -> dict[str, Any]:
    path = Path(model_dir) / name
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_predictor(
    path: str | Path, device: str = "auto", batch_size: int | None = None
) -> SentimentPredictor:
    """Load a model directory or model.tar.gz for scoring (the same code SageMaker serving runs).

    ``batch_size`` None: the backend's own micro-batch size, as the endpoint serves it."""
    from training.inference import SentimentPredictor

    return SentimentPredictor(resolve_model_dir(path), device=device, batch_size=batch_size)
