"""The ``reviewsense`` command's layers at run time: an AWS stage resolves without the local cloud's server,
helpers raise ``OperatorError`` and only the front end turns it into a message on stderr and an exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.container import Container
from reviewsense import cli, pipelineops
from reviewsense.errors import NoPipelineRunError, OperatorError
from tests.helpers.paths import ROOT

RESOLVE_A_DEPLOYED_STAGE = """
import io, json, sys, zipfile
import boto3
from moto import mock_aws

with mock_aws():
    session = boto3.session.Session(region_name="us-east-1")
    role = session.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\\n    return None\\n")
    session.client("lambda").create_function(
        FunctionName="reviewsense-dev-pipeline_prepare", Runtime="python3.11", Role=role,
        Handler="app.handler", Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"REVIEWSENSE_LAKE_BUCKET": "deployed-lake"}},
    )
    from reviewsense import target

    settings = target.resolve(stage="dev").settings
print(json.dumps({
    "stage": settings.stage,
    "lake_bucket": settings.lake_bucket,
    "localcloud": sorted(m for m in sys.modules if m.startswith("reviewsense.localcloud")),
}))
"""


def test_resolving_an_aws_stage_does_not_import_the_local_cloud() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE_A_DEPLOYED_STAGE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout.splitlines()[-1])
    assert resolved == {"stage": "dev", "lake_bucket": "deployed-lake", "localcloud": []}


def test_the_front_end_turns_a_helper_error_into_a_message_and_an_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REVIEWSENSE_HOME", str(tmp_path))  # no local cloud advertised there
    assert cli.main(["query", "SELECT 1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: the local cloud is not running: start it with `reviewsense local up` (or `make demo`)\n"
    )


def test_a_pipeline_that_never_ran_raises_an_operator_error(aws: Any) -> None:
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="reviewsense-local-training-pipeline",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    from chalicelib.config import Settings

    container = Container(Settings(pipeline_state_machine_arn=arn), aws)
    with pytest.raises(NoPipelineRunError, match="no pipeline execution yet") as raised:
        pipelineops.latest_execution(container, None)
    assert isinstance(raised.value, OperatorError) and raised.value.exit_code == 1
    sfn.start_execution(stateMachineArn=arn, name="first")
    assert pipelineops.latest_execution(container, None)["name"] == "first"
