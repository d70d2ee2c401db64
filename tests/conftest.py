"""Fixtures for every test: fake credentials (no test ever reaches a real AWS account) and strict moto."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reviewsense.localcloud import strict
from tests.helpers.paths import DATASET


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(autouse=True)
def _strict_aws() -> Iterator[None]:
    """Every in-process moto (``mock_aws``) validates requests and names task errors as AWS does.

    Per test, so an in-process local cloud that stopped (and uninstalled what it installed) leaves
    no later test lenient.
    """
    installed_here = strict.install()
    yield
    if installed_here:
        strict.uninstall()


def pytest_report_header() -> list[str]:
    return [f"dataset: {DATASET} ({'present' if DATASET.exists() else 'MISSING'})", f"cpu: {os.cpu_count()}"]
