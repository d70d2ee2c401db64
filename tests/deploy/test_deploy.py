"""The deploy and teardown script, run in-process against moto (no AWS account is reachable here).

moto's CloudFormation does not run the SAM transform, so these tests deploy the template that
aws-sam-translator makes of ``sam.json`` (what CloudFormation's transform produces from it); moto skips
the few resource types it does not model (bucket and queue policies, the Glue database, the
EventInvokeConfigs), which the template tests cover. Everything else is created for real in moto.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import check_template, deploy, template

REGION = "eu-west-1"  # not us-east-1: bucket creation needs a LocationConstraint, names carry the region
ACCOUNT = "123456789012"  # moto's default account
LAKE = f"reviewsense-dev-lake-{ACCOUNT}-{REGION}"
ARTIFACTS = f"reviewsense-dev-artifacts-{ACCOUNT}-{REGION}"


@pytest.fixture(scope="module")
def translated(package_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("translated")
    shutil.copy(package_dir / "deployment.zip", out / "deployment.zip")
    sam = json.loads((package_dir / "sam.json").read_text())
    (out / "cloudformation.json").write_text(json.dumps(without_rest_api(check_template.translate(sam))))
    return out


def without_rest_api(cfn: dict[str, Any]) -> dict[str, Any]:
    """moto's CloudFormation ignores a RestApi's OpenAPI ``Body``, so its Deployment fails ("no methods").

    The API (``POST /feedback``) is left out of the stack deployed here; ``tests/deploy/test_template.py``
    checks its definition and the function behind it.
    """
    resources = cfn["Resources"]
    api = {n for n, r in resources.items() if r["Type"].startswith("AWS::ApiGateway::")}
    api |= {
        n
        for n, r in resources.items()
        if r["Type"] == "AWS::Lambda::Permission" and "RestAPI" in json.dumps(r)
    }
    outputs = {k: v for k, v in cfn.get("Outputs", {}).items() if not any(a in json.dumps(v) for a in api)}
    return {**cfn, "Resources": {n: r for n, r in resources.items() if n not in api}, "Outputs": outputs}


# Hermetic whatever ran before in this process: an in-process local cloud turns moto's ASL execution on
# globally, and moto then lists state machines from its interpreter's backend, not CloudFormation's.
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": False}}


@pytest.fixture
def session() -> Iterator[Any]:
    with mock_aws(config=MOTO_CONFIG), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tried to parse AWS::")  # the types moto does not model
        yield boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )


def deployment(session: Any, log: list[str] | None = None, dry_run: bool = False) -> deploy.Deployment:
    lines = log if log is not None else []
    return deploy.Deployment(deploy.Aws(session, dry_run=dry_run, log=lines.append), "dev")


def test_deploy_creates_the_stack_and_publishes_the_code(
    session: Any, translated: Path, tmp_path: Path
) -> None:
    base = tmp_path / "my-encoder"
    base.mkdir()
    (base / "config.json").write_text("{}")
    result = deployment(session).deploy(translated, "cloudformation.json", base_model=base)

    cfn = session.client("cloudformation")
    assert cfn.describe_stacks(StackName="reviewsense-dev")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    names = {f["FunctionName"] for f in session.client("lambda").list_functions()["Functions"]}
    stage = template.load_stage("dev")
    assert names == {stage.function_name(h) for h in stage.handlers}
    env = session.client("lambda").get_function_configuration(FunctionName="reviewsense-dev-ingest")[
        "Environment"
    ]["Variables"]
    assert env["REVIEWSENSE_LAKE_BUCKET"] == LAKE
    assert env["REVIEWSENSE_ALERTS_TOPIC_ARN"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:reviewsense-dev-alerts"
    assert env["REVIEWSENSE_PIPELINE_STATE_MACHINE_ARN"] == (
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:reviewsense-dev-training-pipeline"
    )
    assert env["REVIEWSENSE_ACCOUNT_ID"] == ACCOUNT
    machines = session.client("stepfunctions").list_state_machines()["stateMachines"]
    assert [m["stateMachineArn"] for m in machines] == [env["REVIEWSENSE_PIPELINE_STATE_MACHINE_ARN"]]
    tables = session.client("dynamodb").list_tables()["TableNames"]
    assert sorted(tables) == [
        "reviewsense-dev-feedback",
        "reviewsense-dev-idempotency",
        "reviewsense-dev-pipeline",
    ]
    assert session.client("sqs").get_queue_url(QueueName="reviewsense-dev-dlq")["QueueUrl"]

    s3 = session.client("s3")
    archive = s3.get_object(Bucket=LAKE, Key="code/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "training/train.py" in tar.getnames()
    assert result["code"]["sourcedir"] == f"s3://{LAKE}/code/sourcedir.tar.gz"
    assert result["base_model"] == f"s3://{LAKE}/models/base/my-encoder/"
    assert s3.get_object(Bucket=LAKE, Key="models/base/my-encoder/config.json")["Body"].read() == b"{}"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACTS)["Contents"]]
    assert sorted(k.split("-")[0] for k in keys) == ["dev/deployment", "dev/template"]


def test_teardown_deletes_the_endpoint_the_stack_and_both_buckets(session: Any, translated: Path) -> None:
    deployment(session).deploy(translated, "cloudformation.json")
    sm = session.client("sagemaker")
    role = f"arn:aws:iam::{ACCOUNT}:role/any"
    sm.create_model(ModelName="rs-run-1", ExecutionRoleArn=role, PrimaryContainer={"Image": "image:1"})
    sm.create_endpoint_config(
        EndpointConfigName="rs-run-1-cfg",
        ProductionVariants=[
            {
                "VariantName": "champion",
                "ModelName": "rs-run-1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="reviewsense-dev-sentiment", EndpointConfigName="rs-run-1-cfg")
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:reviewsense-dev-training-pipeline"
    session.client("stepfunctions").start_execution(stateMachineArn=machine, name="manual-1", input="{}")
    session.client("s3").put_object(Bucket=LAKE, Key="raw/web/a.csv", Body=b"x")
    session.client("s3").put_object(Bucket=LAKE, Key="raw/web/a.csv", Body=b"y")  # a second version

    log: list[str] = []
    deployment(session, log).teardown()

    assert sm.list_endpoints()["Endpoints"] == []
    stacks = session.client("cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "reviewsense-dev"} == {"DELETE_COMPLETE"}
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert session.client("lambda").list_functions()["Functions"] == []
    assert any(line.startswith("s3.delete_objects") for line in log)
    assert any(line.startswith("stepfunctions.stop_execution") and "manual-1" in line for line in log)
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [
        "rs-run-1"
    ]  # kept without --purge-registry


def test_a_dry_run_prints_every_change_and_makes_none(session: Any, translated: Path) -> None:
    log: list[str] = []
    deployment(session, log, dry_run=True).deploy(translated, "cloudformation.json")
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert session.client("cloudformation").list_stacks()["StackSummaries"] == []
    calls = [line.split(" ", 3)[2] for line in log if line.startswith("[dry run] ") and "{" in line]
    assert calls == [
        "s3.create_bucket",
        "s3.put_public_access_block",
        "s3.put_bucket_encryption",
        "s3.put_object",
        "s3.put_object",
        "cloudformation.create_change_set",
    ]
    change_set = json.loads(next(line for line in log if "create_change_set" in line).split(" ", 3)[3])
    assert change_set["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert change_set["ChangeSetType"] == "CREATE"
    assert change_set["TemplateURL"].startswith(
        f"https://{ARTIFACTS}.s3.{REGION}.amazonaws.com/dev/template-"
    )
    assert log[-1] == f"[dry run] training code -> s3://{LAKE}/code/sourcedir.tar.gz and code/src/"


def test_deploy_without_a_package_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def make_session(profile: str | None, region: str | None) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )

    assert deploy.main(["deploy", "--package-dir", str(tmp_path)], make_session) == 2
    assert "make package STAGE=dev" in capsys.readouterr().err


def test_a_region_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(SystemExit, match="no AWS region"):
        deploy.Aws(boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=None))


def test_the_cli_reads_a_deployed_stage_from_its_functions(translated: Path) -> None:
    from reviewsense import target
    from reviewsense.errors import StageNotDeployedError

    with mock_aws(config=MOTO_CONFIG), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tried to parse AWS::")
        with pytest.raises(StageNotDeployedError, match="make deploy STAGE=dev"):
            target.resolve(stage="dev")
        session = boto3.session.Session()  # the test environment's credentials, us-east-1
        deployment(session).deploy(translated, "cloudformation.json")
        settings = target.resolve(stage="dev").settings
    assert settings.stage == "dev"
    assert settings.lake_bucket == f"reviewsense-dev-lake-{ACCOUNT}-us-east-1"
    assert settings.pipeline_state_machine_arn.endswith(":stateMachine:reviewsense-dev-training-pipeline")
    assert settings.sagemaker_role_arn.startswith(f"arn:aws:iam::{ACCOUNT}:role/reviewsense-dev-SageMaker")
    assert settings.endpoint_name == "reviewsense-dev-sentiment"


def test_the_sam_template_is_uploaded_pointing_at_the_uploaded_bundle(
    session: Any, package_dir: Path
) -> None:
    d = deployment(session)
    bucket = d.ensure_artifacts_bucket()
    url = d.stage_template(package_dir, "sam.json", bucket)
    key = url.split(".amazonaws.com/", 1)[1]
    uploaded = json.loads(session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert uploaded["Transform"] == "AWS::Serverless-2016-10-31"  # CloudFormation runs the transform
    uris = {
        r["Properties"]["CodeUri"]
        for r in uploaded["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    (uri,) = uris
    assert uri.startswith(f"s3://{ARTIFACTS}/dev/deployment-") and uri.endswith(".zip")
    code_key = uri.removeprefix(f"s3://{ARTIFACTS}/")
    bundle = session.client("s3").get_object(Bucket=bucket, Key=code_key)["Body"].read()
    assert bundle == (package_dir / "deployment.zip").read_bytes()
