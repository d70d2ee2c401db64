"""The training code as SageMaker receives it: ``sourcedir.tar.gz`` for script mode.

Kept apart from the local compute because the publishing command and the tests build the archive
without starting anything: the same bytes go to S3 locally and on AWS.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def build_sourcedir(project_root: Path) -> bytes:
    """``sourcedir.tar.gz`` for script mode: ``training/``, ``chalicelib/__init__.py`` and ``domain/``.

    The bytes are reproducible (sorted entries, zeroed times and owners), so an unchanged tree gives the
    same S3 object. Run it with ``sagemaker_program = "training/train.py"`` (or featurize / evaluate).
    """
    root = Path(project_root)
    files: list[Path] = []
    for folder in (root / "training", root / "chalicelib" / "domain"):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: not a ReviewSense checkout")
        files.extend(p for p in folder.rglob("*") if p.is_file())
    files.append(root / "chalicelib" / "__init__.py")
    wanted = sorted(
        {p for p in files if "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")},
        key=lambda p: p.relative_to(root).as_posix(),
    )
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in wanted:
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()
