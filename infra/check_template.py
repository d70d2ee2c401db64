"""``make check-template``: the packaged template through the SAM transform, cfn-lint and checkov.

cfn-lint (1.54 and later) no longer expands ``AWS::Serverless::*`` resources itself, so serverless
rules (an SQS visibility timeout shorter than a function timeout, an event source without permission
...) would go unchecked on the SAM template. This runs aws-sam-translator first, the way CloudFormation
will (the local ``CodeUri`` replaced by an ``s3://`` placeholder, as ``cloudformation package`` does),
then cfn-lint on the result for every region in the template's Mapping, then checkov, whose skipped
checks are each justified next to the resource (``Metadata.checkov.skip[].comment`` in
``infra/template.py``). Any cfn-lint error or warning, or any failed checkov check, fails the run.

Runs in the tools virtualenv (``.venv-tools``, from ``requirements-tools.txt``), offline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.bundle import main as bundle_main

CODE_PLACEHOLDER = "s3://reviewsense-artifacts-placeholder/deployment.zip"
#: cfn-lint runs once per region; these cover the default DLC/layer accounts and the exceptions.
LINT_REGIONS = (
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "af-south-1",
    "ap-east-1",
    "eu-south-1",
    "cn-north-1",
)


def translate(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template the SAM transform produces (no AWS call: managed policies unused)."""
    from samtranslator.translator.transform import transform

    # The translator insists on a region for its pseudo-parameter table; no call is made with it.
    os.environ.setdefault("AWS_DEFAULT_REGION", LINT_REGIONS[0])
    template = json.loads(json.dumps(sam_template))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = CODE_PLACEHOLDER

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    translated: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    # The transform drops a serverless API's Metadata; its checkov skips are about the Stage it generates.
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Api" and "Metadata" in resource:
            for generated, out in translated["Resources"].items():
                if out["Type"] == "AWS::ApiGateway::Stage" and generated.startswith(name):
                    out["Metadata"] = resource["Metadata"]
    return translated


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run(command: list[str]) -> int:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SAM transform + cfn-lint + checkov + bundle size.")
    parser.add_argument("package_dir", type=Path, help="output of make package (sam.json, deployment.zip)")
    args = parser.parse_args(argv)
    sam = json.loads((args.package_dir / "sam.json").read_text())
    translated = translate(sam)
    out = args.package_dir / "cloudformation.json"
    out.write_text(json.dumps(translated, indent=1) + "\n")
    print(f"SAM transform: {len(sam['Resources'])} resources -> {len(translated['Resources'])} in {out}")
    failures = []
    if run([tool("cfn-lint"), "--format", "parseable", "--regions", *LINT_REGIONS, "--", str(out)]) != 0:
        failures.append("cfn-lint")
    else:
        print("cfn-lint: no errors, no warnings")
    checkov = [tool("checkov"), "--file", str(out), "--framework", "cloudformation", "--compact", "--quiet"]
    if run([*checkov, "--skip-download"]) != 0:
        failures.append("checkov")
    if bundle_main([str(args.package_dir / "deployment.zip")]) != 0:
        failures.append("bundle size")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
