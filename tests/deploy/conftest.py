"""The packaged template, built once per test session with ``chalice package`` (offline, about 6 s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import package, template
from tests.helpers.paths import ROOT


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
