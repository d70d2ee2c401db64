"""``make package``: the merge template, then ``chalice package --merge-template``, offline.

Packaging needs a region (Chalice's client factory asks for one) but no credentials and no network: the
region given here only satisfies that; nothing region-specific reaches the template, which takes region
and account from the stack it is deployed as.

Output in ``build/package/<stage>/``: ``merge-template.json`` (ours), ``sam.json`` (the SAM template with
every resource) and ``deployment.zip`` (the function code Chalice built from ``requirements.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from infra import template

ROOT = template.ROOT
#: Satisfies Chalice's client factory while packaging; never written into the template.
PACKAGING_REGION = "us-east-1"


def package_dir(stage: str, root: Path = ROOT) -> Path:
    return root / "build" / "package" / stage


def chalice_executable() -> str:
    here = Path(sys.executable).parent / "chalice"
    return str(here) if here.exists() else "chalice"


def package(stage: str, out: Path | None = None, root: Path = ROOT) -> Path:
    """Build ``sam.json`` + ``deployment.zip`` for ``stage`` into ``out``; returns the SAM template path."""
    out = out or package_dir(stage, root)
    out.mkdir(parents=True, exist_ok=True)
    merge = out / "merge-template.json"
    merge.write_text(json.dumps(template.build(stage, root), indent=2) + "\n")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", PACKAGING_REGION)}
    env.pop("AWS_ENDPOINT_URL", None)
    subprocess.run(
        [chalice_executable(), "package", "--stage", stage, "--merge-template", str(merge), str(out)],
        cwd=root,
        env=env,
        check=True,
    )
    return out / "sam.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Package the app and every resource it needs as one template."
    )
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    sam = package(args.stage, args.output)
    resources = json.loads(sam.read_text())["Resources"]
    print(f"{sam}: {len(resources)} resources")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
