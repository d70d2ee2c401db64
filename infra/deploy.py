"""``make deploy`` / ``make teardown``: the packaged stack on AWS, with boto3 only.

Deploy, in the account and region of the caller's credentials:

1. an artifacts bucket for the stage (created once, private, encrypted) receives the function bundle
   and the template (templates over 51,200 bytes must come from S3), both named by content hash;
2. a CloudFormation change set (``CAPABILITY_IAM`` for the roles, ``CAPABILITY_AUTO_EXPAND`` for the SAM
   transform) creates or updates the stack ``reviewsense-<stage>``; an unchanged template is a no-op;
3. the training code (``code/sourcedir.tar.gz`` and ``code/src/``, ``reviewsense.codepublish``) and,
   when given, a base model directory (``models/base/<name>/``) go to the stack's lake bucket, where
   the pipeline's jobs read them.

Teardown stops running pipeline executions and this app's in-progress SageMaker jobs, deletes the
SageMaker endpoint the pipeline created (billed by the hour, and not a stack resource), the stack,
then empties (every object version) and deletes the lake bucket (kept by the stack's
``DeletionPolicy: Retain``) and the artifacts bucket. ``--purge-registry`` also deletes
the ``rs-*`` models and endpoint configurations and the model package group with its packages.

``--dry-run`` prints every call that would change something and sends only reads.

Usage: ``python -m infra.deploy deploy --stage dev [--base-model DIR] [--dry-run]``,
``python -m infra.deploy teardown --stage dev [--purge-registry] [--dry-run]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import template

ROOT = template.ROOT
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_CHANGES = "didn't contain changes"


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def stack_name(stage: str) -> str:
    return f"{template.APP_NAME}-{stage}"


class Aws:
    """boto3 calls, logged; in a dry run only reads are sent and writes are printed."""

    def __init__(self, session: Any, dry_run: bool = False, log: Callable[[str], None] = print) -> None:
        self.session = session
        self.dry_run = dry_run
        self.log = log
        self._clients: dict[str, Any] = {}
        self.region: str = session.region_name or ""
        if not self.region:
            raise SystemExit("no AWS region: set AWS_REGION / AWS_DEFAULT_REGION or a profile region")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def read(self, service: str, operation: str, **params: Any) -> Any:
        return getattr(self.client(service), operation)(**params)

    def write(self, service: str, operation: str, **params: Any) -> Any:
        shown = {k: ("<bytes>" if isinstance(v, bytes | bytearray) else v) for k, v in params.items()}
        self.log(
            f"{'[dry run] ' if self.dry_run else ''}{service}.{operation} {json.dumps(shown, default=str)}"
        )
        if self.dry_run:
            return {}
        return getattr(self.client(service), operation)(**params)

    def wait(self, service: str, waiter: str, **params: Any) -> None:
        if not self.dry_run:
            self.client(service).get_waiter(waiter).wait(
                WaiterConfig={"Delay": 5, "MaxAttempts": 720}, **params
            )

    @property
    def account(self) -> str:
        return str(self.read("sts", "get_caller_identity")["Account"])


class Deployment:
    def __init__(self, aws: Aws, stage: str, root: Path = ROOT) -> None:
        self.aws = aws
        self.stage = stage
        self.root = root
        self.stack = stack_name(stage)

    # -- names -----------------------------------------------------------------------------------------

    @property
    def artifacts_bucket(self) -> str:
        return f"{template.APP_NAME}-{self.stage}-artifacts-{self.aws.account}-{self.aws.region}"

    @property
    def expected_lake_bucket(self) -> str:
        return f"{template.APP_NAME}-{self.stage}-lake-{self.aws.account}-{self.aws.region}"

    def expected_state_machine_arn(self, stage: template.Stage) -> str:
        partition = "aws-cn" if self.aws.region.startswith("cn-") else "aws"
        where = f"{partition}:states:{self.aws.region}:{self.aws.account}"
        return f"arn:{where}:stateMachine:{stage.state_machine_name}"

    # -- stack state -----------------------------------------------------------------------------------

    def stack_status(self) -> str | None:
        try:
            stacks = self.aws.read("cloudformation", "describe_stacks", StackName=self.stack)["Stacks"]
        except Exception as exc:
            if _code(exc) == "ValidationError":  # "Stack with id ... does not exist"
                return None
            raise
        return str(stacks[0]["StackStatus"]) if stacks else None

    def outputs(self) -> dict[str, str]:
        stacks = self.aws.read("cloudformation", "describe_stacks", StackName=self.stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    # -- deploy ----------------------------------------------------------------------------------------

    def ensure_artifacts_bucket(self) -> str:
        bucket = self.artifacts_bucket
        try:
            self.aws.read("s3", "head_bucket", Bucket=bucket)
            return bucket
        except Exception as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        params: dict[str, Any] = {"Bucket": bucket}
        if self.aws.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.aws.region}
        self.aws.write("s3", "create_bucket", **params)
        self.aws.write(
            "s3",
            "put_public_access_block",
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.aws.write(
            "s3",
            "put_bucket_encryption",
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        return bucket

    def upload(self, bucket: str, key: str, body: bytes) -> str:
        self.aws.write("s3", "put_object", Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    def stage_template(self, package_dir: Path, template_file: str, bucket: str) -> str:
        """Upload the bundle and the template that points at it; returns the template's HTTPS URL."""
        code = (package_dir / "deployment.zip").read_bytes()
        code_uri = self.upload(
            bucket, f"{self.stage}/deployment-{hashlib.sha256(code).hexdigest()[:16]}.zip", code
        )
        body = json.loads((package_dir / template_file).read_text())
        for resource in body["Resources"].values():
            if resource["Type"] == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = code_uri
            elif resource["Type"] == "AWS::Lambda::Function":  # an already-translated template
                _, _, key = code_uri.removeprefix("s3://").partition("/")
                resource["Properties"]["Code"] = {"S3Bucket": bucket, "S3Key": key}
        data = json.dumps(body, indent=1).encode()
        key = f"{self.stage}/template-{hashlib.sha256(data).hexdigest()[:16]}.json"
        self.upload(bucket, key, data)
        suffix = "amazonaws.com.cn" if self.aws.region.startswith("cn-") else "amazonaws.com"
        return f"https://{bucket}.s3.{self.aws.region}.{suffix}/{key}"

    def apply_change_set(self, template_url: str) -> bool:
        """Create or update the stack; False when the template changes nothing."""
        status = self.stack_status()
        if status == "ROLLBACK_COMPLETE":  # a failed first create can only be deleted
            self.aws.write("cloudformation", "delete_stack", StackName=self.stack)
            self.aws.wait("cloudformation", "stack_delete_complete", StackName=self.stack)
            status = None
        kind = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
        name = f"{self.stack}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        self.aws.write(
            "cloudformation",
            "create_change_set",
            StackName=self.stack,
            ChangeSetName=name,
            ChangeSetType=kind,
            TemplateURL=template_url,
            Capabilities=CAPABILITIES,
            Tags=[{"Key": "app", "Value": template.APP_NAME}, {"Key": "stage", "Value": self.stage}],
        )
        if self.aws.dry_run:
            return True
        try:
            self.aws.wait(
                "cloudformation", "change_set_create_complete", StackName=self.stack, ChangeSetName=name
            )
        except Exception:
            described = self.aws.read(
                "cloudformation", "describe_change_set", StackName=self.stack, ChangeSetName=name
            )
            if NO_CHANGES in str(described.get("StatusReason", "")):
                self.aws.write(
                    "cloudformation", "delete_change_set", StackName=self.stack, ChangeSetName=name
                )
                self.aws.log("the stack is up to date")
                return False
            raise
        self.aws.write("cloudformation", "execute_change_set", StackName=self.stack, ChangeSetName=name)
        waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
        self.aws.wait("cloudformation", waiter, StackName=self.stack)
        return True

    def publish_code(self, bucket: str) -> dict[str, Any]:
        from chalicelib.config import Settings
        from reviewsense.codepublish import publish_code

        prefix = Settings().code_prefix
        if self.aws.dry_run:
            self.aws.log(
                f"[dry run] training code -> s3://{bucket}/{prefix}sourcedir.tar.gz and {prefix}src/"
            )
            return {"sourcedir": f"s3://{bucket}/{prefix}sourcedir.tar.gz"}
        return publish_code(self.aws.client("s3"), bucket, prefix, self.root)

    def publish_base_model(self, bucket: str, directory: Path) -> str:
        prefix = f"models/base/{directory.name}/"
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            self.upload(bucket, prefix + path.relative_to(directory).as_posix(), path.read_bytes())
        return f"s3://{bucket}/{prefix}"

    def deploy(
        self, package_dir: Path, template_file: str = "sam.json", base_model: Path | None = None
    ) -> dict[str, Any]:
        bucket = self.ensure_artifacts_bucket()
        url = self.stage_template(package_dir, template_file, bucket)
        self.apply_change_set(url)
        outputs = {} if self.aws.dry_run else self.outputs()
        lake = outputs.get("LakeBucketName", self.expected_lake_bucket)
        result: dict[str, Any] = {"stack": self.stack, "outputs": outputs, "code": self.publish_code(lake)}
        if base_model is not None:
            result["base_model"] = self.publish_base_model(lake, base_model)
        return result

    # -- teardown --------------------------------------------------------------------------------------

    def _ignore_missing(self, call: Callable[[], Any], *codes: str) -> None:
        try:
            call()
        except Exception as exc:
            if _code(exc) not in (*codes, "ValidationException", "ResourceNotFound", "NoSuchBucket"):
                raise

    def delete_endpoint(self, name: str) -> None:
        try:
            self.aws.read("sagemaker", "describe_endpoint", EndpointName=name)
        except Exception as exc:
            if _code(exc) in ("ValidationException", "ResourceNotFound"):
                return
            raise
        self.aws.write("sagemaker", "delete_endpoint", EndpointName=name)

    def stop_runs(self, state_machine_arn: str | None) -> None:
        """Stop running pipeline executions and this app's SageMaker jobs (billed while they run)."""
        if state_machine_arn:
            pages = self.aws.client("stepfunctions").get_paginator("list_executions")
            for page in pages.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
                for execution in page.get("executions", []):
                    self.aws.write(
                        "stepfunctions",
                        "stop_execution",
                        executionArn=execution["executionArn"],
                        cause="teardown",
                    )
        for kind in ("Training", "Processing"):
            listed = self.aws.read(
                "sagemaker",
                f"list_{kind.lower()}_jobs",
                StatusEquals="InProgress",
                NameContains=template.JOB_PREFIX,
            )
            for job in listed.get(f"{kind}JobSummaries", []):
                name = job[f"{kind}JobName"]
                if name.startswith(template.JOB_PREFIX):
                    self.aws.write("sagemaker", f"stop_{kind.lower()}_job", **{f"{kind}JobName": name})

    def purge_registry(self, group: str) -> None:
        sm = self.aws
        for page in (
            sm.client("sagemaker")
            .get_paginator("list_endpoint_configs")
            .paginate(NameContains=template.JOB_PREFIX)
        ):
            for config in page.get("EndpointConfigs", []):
                if config["EndpointConfigName"].startswith(template.JOB_PREFIX):
                    sm.write(
                        "sagemaker", "delete_endpoint_config", EndpointConfigName=config["EndpointConfigName"]
                    )
        for page in (
            sm.client("sagemaker").get_paginator("list_models").paginate(NameContains=template.JOB_PREFIX)
        ):
            for model in page.get("Models", []):
                if model["ModelName"].startswith(template.JOB_PREFIX):
                    sm.write("sagemaker", "delete_model", ModelName=model["ModelName"])
        try:
            packages = sm.read("sagemaker", "list_model_packages", ModelPackageGroupName=group)[
                "ModelPackageSummaryList"
            ]
        except Exception as exc:
            if _code(exc) in ("ValidationException", "ResourceNotFound"):
                return
            raise
        for package in packages:
            sm.write("sagemaker", "delete_model_package", ModelPackageName=package["ModelPackageArn"])
        self._ignore_missing(
            lambda: sm.write("sagemaker", "delete_model_package_group", ModelPackageGroupName=group)
        )

    def empty_and_delete_bucket(self, bucket: str) -> None:
        try:
            self.aws.read("s3", "head_bucket", Bucket=bucket)
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return
            raise
        paginator = self.aws.client("s3").get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            objects = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(objects), 1000):
                self.aws.write(
                    "s3", "delete_objects", Bucket=bucket, Delete={"Objects": objects[start : start + 1000]}
                )
        self.aws.write("s3", "delete_bucket", Bucket=bucket)

    def teardown(self, purge_registry: bool = False, keep_data: bool = False) -> None:
        status = self.stack_status()
        outputs = self.outputs() if status else {}
        stage = template.load_stage(self.stage, self.root)
        self.stop_runs(outputs.get("TrainingPipelineArn", self.expected_state_machine_arn(stage)))
        self.delete_endpoint(outputs.get("EndpointName", stage.endpoint_name))
        if purge_registry:
            self.purge_registry(outputs.get("ModelPackageGroupName", stage.model_package_group))
        if status:
            self.aws.write("cloudformation", "delete_stack", StackName=self.stack)
            self.aws.wait("cloudformation", "stack_delete_complete", StackName=self.stack)
        if not keep_data:
            self.empty_and_delete_bucket(outputs.get("LakeBucketName", self.expected_lake_bucket))
        self.empty_and_delete_bucket(self.artifacts_bucket)


def session(profile: str | None, region: str | None) -> Any:
    import boto3

    return boto3.session.Session(profile_name=profile, region_name=region)


def main(argv: list[str] | None = None, make_session: Callable[..., Any] = session) -> int:
    parser = argparse.ArgumentParser(description="Deploy or tear down a ReviewSense stage on AWS.")
    parser.add_argument("command", choices=["deploy", "teardown"])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--region", default=None, help="default: the profile's or AWS_DEFAULT_REGION")
    parser.add_argument("--dry-run", action="store_true", help="send only reads; print every change")
    parser.add_argument("--package-dir", type=Path, default=None, help="default: build/package/<stage>")
    parser.add_argument("--template", default="sam.json", help="template file in the package directory")
    parser.add_argument("--base-model", type=Path, default=None, help="directory uploaded to models/base/")
    parser.add_argument("--purge-registry", action="store_true", help="teardown: also rs-* models, registry")
    parser.add_argument("--keep-data", action="store_true", help="teardown: keep the lake bucket")
    args = parser.parse_args(argv)
    aws = Aws(make_session(args.profile, args.region), dry_run=args.dry_run)
    deployment = Deployment(aws, args.stage)
    if args.command == "deploy":
        package_dir = args.package_dir or ROOT / "build" / "package" / args.stage
        if not (package_dir / args.template).exists():
            print(
                f"{package_dir / args.template} is missing: run make package STAGE={args.stage}",
                file=sys.stderr,
            )
            return 2
        result = deployment.deploy(package_dir, args.template, args.base_model)
        print(json.dumps(result, indent=2, default=str))
    else:
        deployment.teardown(purge_registry=args.purge_registry, keep_data=args.keep_data)
        print(f"{deployment.stack}: torn down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
