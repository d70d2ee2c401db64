"""The Lambda bundle stays well under Lambda's 250 MB unzipped limit together with its layer.

Lambda counts the function's unzipped code plus every layer against 262,144,000 bytes. The bundle is
the ``deployment.zip`` that ``chalice package`` builds from ``app.py``, ``chalicelib/`` and
``requirements.txt``; the layer is the managed AWS SDK for pandas layer, whose size we cannot measure
offline, so its largest published unzipped size (``infra.regions.PANDAS_LAYER_UNZIPPED_MB``) is used.
The Lambda runtime ships boto3, botocore and s3transfer, so ``requirements.txt`` does not list them and
a bundle that vendors them anyway (a transitive dependency pulling them in) fails the check.

Usage: ``python -m infra.bundle build/package/dev/deployment.zip`` (stdlib only).
"""

from __future__ import annotations

import argparse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.regions import PANDAS_LAYER_RELEASE, PANDAS_LAYER_UNZIPPED_MB

MB = 1_000_000
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
#: "Well under": bundle + layer must leave this much of the limit free.
HEADROOM_BYTES = 10 * MB
#: Top-level packages the Lambda Python runtime already provides.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


@dataclass(frozen=True)
class BundleSize:
    unzipped_bytes: int
    runtime_provided_bytes: int
    zipped_bytes: int

    @property
    def without_runtime_bytes(self) -> int:
        return self.unzipped_bytes - self.runtime_provided_bytes

    @property
    def with_layer_bytes(self) -> int:
        return self.unzipped_bytes + PANDAS_LAYER_UNZIPPED_MB * MB

    @property
    def within_budget(self) -> bool:
        return self.with_layer_bytes <= LAMBDA_UNZIPPED_LIMIT_BYTES - HEADROOM_BYTES

    @property
    def vendors_runtime(self) -> bool:
        return self.runtime_provided_bytes > 0

    def report(self) -> str:
        runtime = ", ".join(RUNTIME_PROVIDED)
        return (
            f"Lambda bundle: {self.zipped_bytes / MB:.1f} MB zipped, "
            f"{self.unzipped_bytes / MB:.1f} MB unzipped "
            f"({self.without_runtime_bytes / MB:.1f} MB without the runtime's {runtime}); "
            f"with the AWS SDK for pandas layer ({PANDAS_LAYER_UNZIPPED_MB} MB, largest published size, "
            f"release {PANDAS_LAYER_RELEASE} in use): {self.with_layer_bytes / MB:.1f} MB of the "
            f"{LAMBDA_UNZIPPED_LIMIT_BYTES / MB:.1f} MB limit "
            f"(the budget leaves {HEADROOM_BYTES / MB:.0f} MB free)"
        )


def measure(zip_path: Path) -> BundleSize:
    total = runtime = 0
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            total += info.file_size
            top = info.filename.split("/", 1)[0]
            if top in RUNTIME_PROVIDED or top.split("-", 1)[0] in RUNTIME_PROVIDED:
                runtime += info.file_size
    return BundleSize(total, runtime, zip_path.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the Lambda bundle size against the unzipped limit.")
    parser.add_argument("zip", type=Path)
    args = parser.parse_args(argv)
    size = measure(args.zip)
    print(size.report())
    if not size.within_budget:
        print("FAILED: the bundle and the layer come too close to Lambda's unzipped limit")
        return 1
    if size.vendors_runtime:
        print(f"FAILED: the bundle vendors {', '.join(RUNTIME_PROVIDED)}, which the Lambda runtime provides")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
