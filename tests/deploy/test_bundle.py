"""The Lambda bundle plus the pandas layer stays well under Lambda's 250 MB unzipped limit."""

from __future__ import annotations

import zipfile
from pathlib import Path

from infra import bundle


def test_the_packaged_bundle_is_within_the_budget(package_dir: Path) -> None:
    size = bundle.measure(package_dir / "deployment.zip")
    print(size.report())
    assert size.within_budget, size.report()
    assert size.runtime_provided_bytes == 0  # boto3 comes from the Lambda runtime, never the bundle
    assert bundle.main([str(package_dir / "deployment.zip")]) == 0


def test_a_bundle_too_close_to_the_limit_fails(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("chalicelib/padding.bin", b"\0" * 60 * bundle.MB)
        archive.writestr("botocore/data.json", b"{}" * 1000)
    size = bundle.measure(path)
    assert size.unzipped_bytes == 60 * bundle.MB + 2000
    assert size.runtime_provided_bytes == 2000
    assert not size.within_budget
    assert bundle.main([str(path)]) == 1


def test_a_bundle_that_vendors_boto3_fails(tmp_path: Path) -> None:
    path = tmp_path / "vendored.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", b"")
        archive.writestr("boto3/__init__.py", b"# vendored")
    size = bundle.measure(path)
    assert size.within_budget and size.vendors_runtime
    assert bundle.main([str(path)]) == 1
