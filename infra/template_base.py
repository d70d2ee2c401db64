"""The building blocks of the merge template: names, intrinsic functions, IAM statements, the stage.

Every part of the template (``infra.template_shared``, ``template_iam``, ``template_functions``,
``template_pipeline``, assembled by ``infra.template``) builds on these: the ``Fn::Sub`` / ``Ref`` /
``Fn::GetAtt`` helpers, one IAM statement, checkov's inline suppression, and ``Stage``, which names one
stage's resources. No resource is defined here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_NAME = "reviewsense"
ROOT = Path(__file__).resolve().parent.parent
#: Every SageMaker job, model and endpoint configuration the pipeline creates starts with this
#: (``chalicelib.domain.pipeline.job_name``, ``EndpointRollout.deploy``): IAM scopes to it.
JOB_PREFIX = "rs-"
#: Log group SageMaker training jobs write to (read by the watchdog).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
LOG_RETENTION_DAYS = 30

Json = dict[str, Any]


def sub(text: str, variables: Json | None = None) -> Json:
    return {"Fn::Sub": [text, variables] if variables else text}


def ref(name: str) -> Json:
    return {"Ref": name}


def arn_of(logical_id: str) -> Json:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def regional(key: str) -> Json:
    return {"Fn::FindInMap": ["Regional", ref("AWS::Region"), key]}


#: Chalice serves every ``@app.route`` from one function: ``APIHandler`` (handler ``app.app``, role
#: ``ApiHandlerRole``, named ``<app>-<stage>``). The template calls it by its handler, ``app``.
API_HANDLER = "app"


def logical_id(handler: str) -> str:
    """The logical id Chalice gives a function (``pipeline_prepare`` -> ``PipelinePrepare``)."""
    if handler == API_HANDLER:
        return "APIHandler"
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", handler) if part)


def role_id(handler: str) -> str:
    """The logical id of the role Chalice gives a function."""
    return "ApiHandlerRole" if handler == API_HANDLER else f"{logical_id(handler)}Role"


def statement(sid: str, actions: list[str], resources: Any, condition: Json | None = None) -> Json:
    out: Json = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


@dataclass(frozen=True)
class Stage:
    """Names of one stage's resources; the ones AWS scopes by account and region are built with Fn::Sub."""

    name: str
    env: dict[str, str]
    handlers: tuple[str, ...]
    asynchronous: dict[str, str]  # handler -> its event source: "s3", "pattern" or "schedule"
    #: handler -> the ``FunctionResponseTypes`` of its SQS event source (``app.SQS_FUNCTION_RESPONSE_TYPES``)
    sqs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"{APP_NAME}-{self.name}"

    def function_name(self, handler: str) -> str:
        return self.prefix if handler == API_HANDLER else f"{self.prefix}-{handler}"

    @property
    def feedback_queue_name(self) -> str:
        """``chalicelib.config.feedback_queue_name`` for this stage: the name ``app.py`` packages with."""
        return self.env.get("REVIEWSENSE_FEEDBACK_QUEUE") or f"{self.prefix}-feedback"

    @property
    def state_machine_name(self) -> str:
        return f"{self.prefix}-training-pipeline"

    @property
    def endpoint_name(self) -> str:
        return self.env.get("REVIEWSENSE_ENDPOINT_NAME", f"{self.prefix}-sentiment")

    @property
    def model_package_group(self) -> str:
        return self.env.get("REVIEWSENSE_MODEL_PACKAGE_GROUP", f"{APP_NAME}-sentiment")

    @property
    def glue_database(self) -> str:
        return f"{APP_NAME}_{self.name}".replace("-", "_")

    def sagemaker_arn(self, kind: str, name: str) -> Json:
        return sub(f"arn:${{AWS::Partition}}:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/{name}")

    def state_machine_arn(self) -> Json:
        # Built from the name, not Ref: the functions' environment would otherwise depend on the state
        # machine, whose definition depends on the functions (a circular dependency).
        return sub(
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
            + self.state_machine_name
        )


def lake_zone(prefix: str) -> Json:
    return sub(f"arn:${{AWS::Partition}}:s3:::${{LakeBucket}}/{prefix}*")


LAKE_BUCKET_ARN = sub("arn:${AWS::Partition}:s3:::${LakeBucket}")


def skip(*checks: tuple[str, str]) -> Json:
    """checkov's inline suppression; each skipped check carries its justification."""
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in checks]}}


def dynamodb_table(name: str, key_reason: str, ttl_attribute: str | None = None) -> Json:
    """An on-demand table keyed by ``id`` (string), point-in-time recovery and encryption on.

    ``key_reason`` says why the DynamoDB-managed key is enough (checkov's CKV_AWS_119 asks for a
    customer-managed one); ``ttl_attribute`` names the expiry attribute when items expire.
    """
    properties: Json = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }
    if ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl_attribute, "Enabled": True}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "Metadata": skip(("CKV_AWS_119", key_reason)),
        "Properties": properties,
    }


def assume_role(service: str) -> Json:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def document(statements: list[Json]) -> Json:
    return {"Version": "2012-10-17", "Statement": statements}
