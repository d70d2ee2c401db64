"""Publishes the training code where SageMaker jobs read it.

Training jobs take ``code/sourcedir.tar.gz`` (script mode: ``sagemaker_submit_directory``); processing
jobs take the same files unpacked under ``code/src/``. Both hold ``training/`` plus the pure
``chalicelib/domain/`` modules it imports (the training-health rules), and ``requirements.txt`` at the
root (a copy of ``training/requirements.txt``): the SageMaker training toolkit installs it before the
entry point, ``training.bootstrap`` before a processing step (see ``chalicelib.images``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

#: Where script mode and ``training.bootstrap`` look for the requirements (the root of the source dir).
REQUIREMENTS = "requirements.txt"
#: The file in the repository that is published there.
SHIPPED_REQUIREMENTS = "training/requirements.txt"
#: ``code/requirements.txt`` of every model archive (the PyTorch serving container installs it).
SERVING_REQUIREMENTS = "training/serving_requirements.txt"
#: The teacher's probabilities (``training.distill``): the train step distils from them on AWS too.
TEACHER_DATA = ("training/teacher/probabilities.csv.gz", "training/teacher/teacher.json")


def sourcedir_files(project_root: Path) -> dict[str, Path]:
    """Archive name -> file, for every file the jobs need: code, ``requirements.txt``, teacher data."""
    files: dict[str, Path] = {}
    for folder in ("training", "chalicelib/domain"):
        if not (project_root / folder).is_dir():
            raise FileNotFoundError(f"{project_root / folder} is missing: not a ReviewSense checkout")
        for path in sorted((project_root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[path.relative_to(project_root).as_posix()] = path
    files["chalicelib/__init__.py"] = project_root / "chalicelib" / "__init__.py"
    files[SERVING_REQUIREMENTS] = project_root / SERVING_REQUIREMENTS  # model_io copies it into model.tar.gz
    for name in TEACHER_DATA:
        if (project_root / name).is_file():
            files[name] = project_root / name
    files[REQUIREMENTS] = project_root / SHIPPED_REQUIREMENTS
    return files


def build_sourcedir_archive(project_root: Path) -> bytes:
    """``sourcedir.tar.gz``: the ``sourcedir_files``, reproducible (sorted, zeroed times and owners)."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, path in sorted(sourcedir_files(project_root).items()):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def code_version(project_root: Path) -> str:
    """A content hash of the training code (plus the git commit when there is one)."""
    digest = hashlib.sha256()
    for name, path in sorted(sourcedir_files(project_root).items()):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    head = project_root / ".git" / "HEAD"
    commit = ""
    if head.exists():
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = project_root / ".git" / ref[5:]
            commit = ref_path.read_text().strip() if ref_path.exists() else ""
        else:
            commit = ref
    return f"git:{commit[:12] or 'none'} code:{digest.hexdigest()[:12]}"


def publish_code(s3: Any, bucket: str, prefix: str, project_root: Path) -> dict[str, Any]:
    archive = build_sourcedir_archive(project_root)
    s3.put_object(Bucket=bucket, Key=f"{prefix}sourcedir.tar.gz", Body=archive)
    files = sourcedir_files(project_root)
    for name, path in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}src/{name}", Body=path.read_bytes())
    return {
        "sourcedir": f"s3://{bucket}/{prefix}sourcedir.tar.gz",
        "files": len(files),
        "code_version": code_version(project_root),
    }
