"""The packaged template, built once per test session with ``chalice package`` (offline, about 6 s)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import package, template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    package.package("dev", out, ROOT)
    return out


@pytest.fixture(scope="session")
def sam(package_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((package_dir / "sam.json").read_text())
    return data


@pytest.fixture(scope="session")
def stage() -> template.Stage:
    return template.load_stage("dev", ROOT)


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)
