"""tar.gz archives in memory: hand-made model archives and source dirs, and reading one back."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping


def targz(files: Mapping[str, str | bytes]) -> bytes:
    """A gzipped tar holding ``files`` (archive name -> text or bytes), in the given order."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    """The regular files of a (gzipped) tar: archive name -> bytes."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        files: dict[str, bytes] = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[member.name] = handle.read()
        return files
