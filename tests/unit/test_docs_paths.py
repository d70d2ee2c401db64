"""The contributor docs name only files, folders and ``make`` targets that exist.

``docs/architecture.md`` and ``README.md`` tell a new engineer where things live; a file moved or renamed
without updating them sends that engineer to a path that is not there. Every backticked repository path
(``chalicelib/...``, ``tests/...``, ``app.py`` ...) must exist (a ``<placeholder>`` part stands for any
name: the folder before it must exist; a ``*`` must match something), and every backticked ``make X``
must name a target of the Makefile.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT

DOCS = ("docs/architecture.md", "README.md")
REPO_PATH = re.compile(
    r"^(?:\.chalice/|chalicelib/|training/|reviewsense/|infra/|tests/|statemachines/|docs/|examples/"
    r"|app\.py$|Makefile$|pyproject\.toml$|requirements[\w-]*\.txt$)\S*$"
)
TARGET = re.compile(r"^[\w][\w-]*$")


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def repo_paths(text: str) -> list[str]:
    return sorted({token for token in backticked(text) if REPO_PATH.match(token)})


def missing_paths(root: Path, paths: list[str]) -> list[str]:
    missing = []
    for path in paths:
        cut = min((i for i in (path.find("<"), path.find("{")) if i >= 0), default=-1)
        if cut >= 0:
            exists = (root / path[:cut].rsplit("/", 1)[0]).is_dir()
        elif "*" in path:
            exists = any(root.glob(path))
        else:
            exists = (root / path).exists()
        if not exists:
            missing.append(path)
    return missing


def make_targets(makefile: str) -> set[str]:
    return set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))


def named_targets(text: str) -> set[str]:
    found = set()
    for token in backticked(text):
        words = token.split()
        if words[0] == "make":
            found |= {word for word in words[1:] if TARGET.match(word)}
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_backticked_repository_path_exists(doc: str) -> None:
    text = (ROOT / doc).read_text()
    paths = repo_paths(text)
    assert paths, f"{doc} names no repository path: the pattern no longer matches its style"
    assert missing_paths(ROOT, paths) == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_make_target_named_exists(doc: str) -> None:
    targets = make_targets((ROOT / "Makefile").read_text())
    assert named_targets((ROOT / doc).read_text()) - targets == set()


def test_the_checks_see_a_missing_path_and_a_missing_target(tmp_path: Path) -> None:
    (tmp_path / "chalicelib").mkdir()
    (tmp_path / "chalicelib" / "real.py").write_text("")
    text = '`chalicelib/real.py` `chalicelib/gone.py` `chalicelib/<n>.py` `training/<x>` `make nope Y="a B"`'
    assert missing_paths(tmp_path, repo_paths(text)) == ["chalicelib/gone.py", "training/<x>"]
    assert named_targets(text) == {"nope"}
    assert make_targets("test: install\n\tpytest\nnope-not:\n") == {"test", "nope-not"}
