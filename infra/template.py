"""Builds the merge template that turns Chalice's functions into one deployable stack.

``chalice package`` emits only the Lambda functions and one role per function. Everything else the app
needs (the lake bucket, both tables, the dead-letter queue, the alerts topic, the Glue database, the
state machine and its role, the SageMaker execution role) comes from the template built here, which
``chalice package --merge-template`` deep-merges into Chalice's SAM template (dictionaries merge, lists
are replaced whole). The same merge also

- replaces each function role's policy with that function's own least-privilege policy, scoped to this
  stack's resources (``POLICIES`` below: a handler without an entry is an error, not a silent default);
- gives every function its log group, its explicit name and the stack's resource names and ARNs as
  environment variables (so ``.chalice/config.json`` holds no ARN, region or account);
- wires every asynchronously invoked function (EventBridge patterns, schedules) to the dead-letter queue:
  Lambda's on-failure destination after its retries, and the rule target's own dead-letter config for
  events EventBridge could not deliver.

Region and account come from the stack (``AWS::Region``, ``AWS::AccountId``, ``AWS::Partition``,
``AWS::URLSuffix``); the few per-region AWS-owned account ids live in one Mapping (``infra.regions``).
The state machine definition is read from ``statemachines/*.asl.json`` and every ``${Placeholder}`` gets
a ``DefinitionSubstitutions`` entry; its role allows exactly the ``aws-sdk:sagemaker:*`` actions the
definition uses.

Usage: ``python -m infra.template --stage dev --output build/package/dev/merge-template.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.images import DLC_ACCOUNTS
from infra.regions import PANDAS_LAYER_NAME, REGIONS

APP_NAME = "reviewsense"
ROOT = Path(__file__).resolve().parent.parent
#: Every SageMaker job, model and endpoint configuration the pipeline creates starts with this
#: (``chalicelib.domain.pipeline.job_name``, ``EndpointRollout.deploy``): IAM scopes to it.
JOB_PREFIX = "rs-"
#: Log group SageMaker training jobs write to (read by the watchdog).
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
LOG_RETENTION_DAYS = 30
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
#: Lambda's own retries of an asynchronous invocation before the on-failure destination.
ASYNC_RETRIES = 2
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

Json = dict[str, Any]


def sub(text: str, variables: Json | None = None) -> Json:
    return {"Fn::Sub": [text, variables] if variables else text}


def ref(name: str) -> Json:
    return {"Ref": name}


def arn_of(logical_id: str) -> Json:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def regional(key: str) -> Json:
    return {"Fn::FindInMap": ["Regional", ref("AWS::Region"), key]}


def logical_id(handler: str) -> str:
    """The logical id Chalice gives a function (``pipeline_prepare`` -> ``PipelinePrepare``)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", handler) if part)


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

    @property
    def prefix(self) -> str:
        return f"{APP_NAME}-{self.name}"

    def function_name(self, handler: str) -> str:
        return f"{self.prefix}-{handler}"

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


# -- resources outside the functions -----------------------------------------------------------------


def lake_zone(prefix: str) -> Json:
    return sub(f"arn:${{AWS::Partition}}:s3:::${{LakeBucket}}/{prefix}*")


LAKE_BUCKET_ARN = sub("arn:${AWS::Partition}:s3:::${LakeBucket}")


def skip(*checks: tuple[str, str]) -> Json:
    """checkov's inline suppression; each skipped check carries its justification."""
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in checks]}}


def shared_resources(stage: Stage) -> Json:
    p = stage.prefix
    return {
        "LakeBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Metadata": skip(
                (
                    "CKV_AWS_18",
                    "Access logging needs a second bucket per stage; CloudTrail data events are the audit "
                    "trail to enable where one is required.",
                ),
            ),
            "Properties": {
                "BucketName": sub(f"{p}-lake-${{AWS::AccountId}}-${{AWS::Region}}"),
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                # Versioning keeps an overwritten or deleted upload recoverable (raw data is the
                # source of truth); old versions expire so the lake does not grow without bound.
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-old-versions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    ]
                },
                "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            },
        },
        "LakeBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": ref("LakeBucket"),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [LAKE_BUCKET_ARN, lake_zone("")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        },
        "IdempotencyTable": {
            "Type": "AWS::DynamoDB::Table",
            "Metadata": skip(
                (
                    "CKV_AWS_119",
                    "Encrypted with the DynamoDB-managed KMS key (SSEEnabled); a customer-managed key "
                    "adds cost and key administration for records that expire within days.",
                )
            ),
            "Properties": {
                "TableName": f"{p}-idempotency",
                "BillingMode": "PAY_PER_REQUEST",
                # Powertools' DynamoDBPersistenceLayer: partition key "id", expiry in "expiration".
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "PipelineTable": {
            "Type": "AWS::DynamoDB::Table",
            "Metadata": skip(
                (
                    "CKV_AWS_119",
                    "Encrypted with the DynamoDB-managed KMS key; it holds counters and deployment "
                    "history, nothing that needs a customer-managed key.",
                )
            ),
            "Properties": {
                "TableName": f"{p}-pipeline",
                "BillingMode": "PAY_PER_REQUEST",
                # Items keyed by "id": "trigger#new-labelled-reviews", "deployments#<endpoint>".
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        },
        "DeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Metadata": skip(
                (
                    "CKV_AWS_27",
                    "Encrypted with SQS-managed keys (SqsManagedSseEnabled), which checkov does not "
                    "recognise; the AWS-managed KMS key for SQS would refuse EventBridge's undelivered "
                    "events.",
                )
            ),
            "Properties": {
                "QueueName": f"{p}-dlq",
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        },
        "DeadLetterQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [ref("DeadLetterQueue")],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "UndeliveredEventsFromThisStacksRules",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": arn_of("DeadLetterQueue"),
                            "Condition": {
                                "ArnLike": {
                                    "aws:SourceArn": sub(
                                        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
                                        "rule/${AWS::StackName}-*"
                                    )
                                }
                            },
                        },
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:*",
                            "Resource": arn_of("DeadLetterQueue"),
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
            },
        },
        "AlertsTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": f"{p}-alerts", "KmsMasterKeyId": "alias/aws/sns"},
        },
        "GlueDatabase": {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseInput": {
                    "Name": stage.glue_database,
                    "Description": "ReviewSense curated reviews and quarantine (Parquet in the lake bucket)",
                },
            },
        },
        "TrainingPipelineLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Metadata": skip(
                ("CKV_AWS_158", "CloudWatch Logs encrypts every log group; no customer-managed key needed.")
            ),
            "Properties": {
                "LogGroupName": f"/aws/vendedlogs/states/{stage.state_machine_name}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "SageMakerExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": f"Assumed by the {p} training, processing jobs and the endpoint",
                "AssumeRolePolicyDocument": assume_role("sagemaker.amazonaws.com"),
                "Policies": [
                    {"PolicyName": "lake-and-logs", "PolicyDocument": document(sagemaker_statements(stage))}
                ],
            },
        },
    }


def assume_role(service: str) -> Json:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def document(statements: list[Json]) -> Json:
    return {"Version": "2012-10-17", "Statement": statements}


def sagemaker_statements(stage: Stage) -> list[Json]:
    """What jobs and the endpoint need: code, curated data and run artifacts; logs, metrics, images."""
    return [
        statement(
            "ReadCodeDataAndArtifacts",
            ["s3:GetObject"],
            [lake_zone("code/"), lake_zone("curated/"), lake_zone("pipeline/"), lake_zone("models/")],
        ),
        statement(
            "WriteRunArtifactsAndCapture",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [lake_zone("pipeline/"), lake_zone("capture/")],
        ),
        statement("ListLake", ["s3:ListBucket", "s3:GetBucketLocation"], LAKE_BUCKET_ARN),
        statement(
            "JobAndEndpointLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/*"),
        ),
        statement(
            "SageMakerMetrics",
            ["cloudwatch:PutMetricData"],
            "*",  # PutMetricData has no resource type; the namespace condition scopes it.
            {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
        ),
        statement("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),  # no resource type exists for it
        statement(
            "PullFrameworkImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            sub(
                "arn:${AWS::Partition}:ecr:${AWS::Region}:${Account}:repository/*",
                {"Account": regional("DlcAccount")},
            ),
        ),
    ]


# -- the functions' policies ---------------------------------------------------------------------------

Policy = Callable[[Stage, str], list[Json]]


def _logs(stage: Stage, handler: str) -> list[Json]:
    return [
        statement(
            "OwnLogGroup",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            arn_of(f"{logical_id(handler)}LogGroup"),
        )
    ]


def _dead_letters(stage: Stage, handler: str) -> list[Json]:
    return [statement("OnFailureDestination", ["sqs:SendMessage"], arn_of("DeadLetterQueue"))]


def _ingest(stage: Stage, handler: str) -> list[Json]:
    return [
        statement("ReadRawZone", ["s3:GetObject", "s3:GetObjectVersion"], lake_zone("raw/")),
        statement(
            "WriteCuratedAndQuarantine",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            [lake_zone("curated/"), lake_zone("quarantine/")],
        ),
        statement("ListLake", ["s3:ListBucket"], LAKE_BUCKET_ARN),
        statement(
            "Catalog",
            [
                "glue:GetDatabase",
                "glue:CreateDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartition",
                "glue:CreatePartition",
                "glue:BatchCreatePartition",
            ],
            [
                sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog"),
                sub(
                    "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/"
                    + stage.glue_database
                ),
                sub(
                    "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/"
                    + f"{stage.glue_database}/*"
                ),
            ],
        ),
        statement(
            "RunOnce",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            arn_of("IdempotencyTable"),
        ),
        statement(
            "DomainEvents",
            ["events:PutEvents"],
            sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"),
        ),
    ]


def _endpoint_reads(stage: Stage) -> Json:
    return statement(
        "ReadServingState",
        ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
        [
            stage.sagemaker_arn("endpoint", stage.endpoint_name),
            stage.sagemaker_arn("endpoint-config", f"{JOB_PREFIX}*"),
            stage.sagemaker_arn("model", f"{JOB_PREFIX}*"),
        ],
    )


def _prepare(stage: Stage, handler: str) -> list[Json]:
    return [_endpoint_reads(stage)]


def _gate(stage: Stage, handler: str) -> list[Json]:
    return [
        statement("ReadEvaluations", ["s3:GetObject"], lake_zone("pipeline/")),
        statement("ListLake", ["s3:ListBucket"], LAKE_BUCKET_ARN),
    ]


def _register(stage: Stage, handler: str) -> list[Json]:
    group = stage.model_package_group
    return [
        statement("RunArtifacts", ["s3:GetObject", "s3:PutObject"], lake_zone("pipeline/")),
        statement("ListLake", ["s3:ListBucket"], LAKE_BUCKET_ARN),
        statement(
            "Registry",
            [
                "sagemaker:CreateModelPackageGroup",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
            ],
            [
                stage.sagemaker_arn("model-package-group", group),
                stage.sagemaker_arn("model-package", f"{group}/*"),
            ],
        ),
    ]


def _pass_sagemaker_role() -> Json:
    return statement(
        "PassExecutionRole",
        ["iam:PassRole"],
        arn_of("SageMakerExecutionRole"),
        {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )


def _deployment_history() -> Json:
    return statement("DeploymentHistory", ["dynamodb:GetItem", "dynamodb:PutItem"], arn_of("PipelineTable"))


def _deploy(stage: Stage, handler: str) -> list[Json]:
    return [
        _endpoint_reads(stage),
        statement(
            "RollOut",
            [
                "sagemaker:CreateModel",
                "sagemaker:CreateEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
            ],
            [
                stage.sagemaker_arn("endpoint", stage.endpoint_name),
                stage.sagemaker_arn("endpoint-config", f"{JOB_PREFIX}*"),
                stage.sagemaker_arn("model", f"{JOB_PREFIX}*"),
            ],
        ),
        _pass_sagemaker_role(),
        _deployment_history(),
    ]


def _deploy_status(stage: Stage, handler: str) -> list[Json]:
    return [_endpoint_reads(stage), _deployment_history()]


def _cleanup(stage: Stage, handler: str) -> list[Json]:
    return [
        _endpoint_reads(stage),
        statement(
            "DeleteRunResources",
            ["sagemaker:DeleteModel", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteEndpoint"],
            [
                stage.sagemaker_arn("endpoint", stage.endpoint_name),
                stage.sagemaker_arn("endpoint-config", f"{JOB_PREFIX}*"),
                stage.sagemaker_arn("model", f"{JOB_PREFIX}*"),
            ],
        ),
        _deployment_history(),
    ]


def _start_pipeline(stage: Stage) -> Json:
    return statement("StartPipeline", ["states:StartExecution"], stage.state_machine_arn())


def _retrain_on_new_data(stage: Stage, handler: str) -> list[Json]:
    return [
        _start_pipeline(stage),
        statement("NewDataCounter", ["dynamodb:GetItem", "dynamodb:UpdateItem"], arn_of("PipelineTable")),
    ]


def _retrain_on_schedule(stage: Stage, handler: str) -> list[Json]:
    return [_start_pipeline(stage)]


def _watchdog(stage: Stage, handler: str) -> list[Json]:
    return [
        statement(
            "OwnTrainingJobsOnly",
            ["sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
            stage.sagemaker_arn("training-job", f"{JOB_PREFIX}*"),
        ),
        statement(
            "TrainingJobLogs",
            ["logs:DescribeLogStreams", "logs:GetLogEvents"],
            sub(
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                f"{TRAINING_LOG_GROUP}:*"
            ),
        ),
        statement("Alerts", ["sns:Publish"], ref("AlertsTopic")),
    ]


def _reconcile(stage: Stage, handler: str) -> list[Json]:
    return [s for s in _ingest(stage, handler) if s.get("Sid") != "RunOnce"]


def _watchdog_on_schedule(stage: Stage, handler: str) -> list[Json]:
    # ListTrainingJobs has no resource type: it cannot be scoped by ARN. The watchdog passes
    # NameContains and checks only jobs named with JOB_PREFIX; Describe/Stop above are scoped to them.
    return [*_watchdog(stage, handler), statement("ListTrainingJobs", ["sagemaker:ListTrainingJobs"], "*")]


#: One entry per Chalice handler: what that function may do, beyond writing its own logs.
POLICIES: dict[str, Policy] = {
    "ingest": _ingest,
    # The hourly safety net lists the raw zone and the manifests and ingests what was missed: the
    # same resources as ingest, less the run-once table (reconcile decides by the manifests).
    "reconcile_raw": _reconcile,
    "pipeline_prepare": _prepare,
    "pipeline_gate": _gate,
    "pipeline_register": _register,
    "pipeline_deploy": _deploy,
    "pipeline_deploy_status": _deploy_status,
    "pipeline_cleanup": _cleanup,
    "retrain_on_new_data": _retrain_on_new_data,
    "retrain_on_schedule": _retrain_on_schedule,
    "watchdog_on_event": _watchdog,
    "watchdog_on_schedule": _watchdog_on_schedule,
}


def function_policy(stage: Stage, handler: str) -> Json:
    if handler not in POLICIES:
        raise KeyError(f"no IAM policy for handler {handler!r}: add one to infra.template.POLICIES")
    statements = [*_logs(stage, handler), *POLICIES[handler](stage, handler)]
    if handler in stage.asynchronous:
        statements += _dead_letters(stage, handler)
    return document(statements)


# -- the functions --------------------------------------------------------------------------------------


def environment(stage: Stage) -> Json:
    """Values that name this stack's resources; they override ``.chalice/config.json``.

    The framework image URIs are not among them: the settings derive them from the function's region
    (``AWS_REGION``, set by Lambda to the stack's region) and the instance types, so a GPU instance type
    set later still gets the GPU image. The execution role may pull from that region's DLC registry.
    """
    return {
        "REVIEWSENSE_LAKE_BUCKET": ref("LakeBucket"),
        "REVIEWSENSE_IDEMPOTENCY_TABLE": ref("IdempotencyTable"),
        "REVIEWSENSE_PIPELINE_TABLE": ref("PipelineTable"),
        "REVIEWSENSE_ALERTS_TOPIC_ARN": ref("AlertsTopic"),
        "REVIEWSENSE_GLUE_DATABASE": ref("GlueDatabase"),
        "REVIEWSENSE_PIPELINE_STATE_MACHINE_ARN": stage.state_machine_arn(),
        "REVIEWSENSE_SAGEMAKER_ROLE_ARN": arn_of("SageMakerExecutionRole"),
        "REVIEWSENSE_ACCOUNT_ID": ref("AWS::AccountId"),
        "REVIEWSENSE_ENDPOINT_NAME": stage.endpoint_name,
        "REVIEWSENSE_MODEL_PACKAGE_GROUP": stage.model_package_group,
    }


def pandas_layer() -> Json:
    return sub(
        f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{Account}}:layer:{PANDAS_LAYER_NAME}:${{Version}}",
        {"Account": regional("LayerAccount"), "Version": regional("LayerVersion")},
    )


FUNCTION_SKIPS = (
    (
        "CKV_AWS_116",
        "Asynchronous invocations go to the stack's dead-letter queue through the on-failure destination "
        "(EventInvokeConfig), which records the error as well; the pipeline_* functions are invoked "
        "synchronously by Step Functions, whose Catch handles failures.",
    ),
    ("CKV_AWS_117", "The functions call only AWS APIs; a VPC would add NAT cost and cold-start latency."),
    ("CKV_AWS_115", "Concurrency is bounded by the event sources; reserving it would cap the account pool."),
    ("CKV_AWS_173", "Environment variables hold resource names and ARNs only, no secrets."),
)


def function_resources(stage: Stage) -> Json:
    resources: Json = {}
    env = environment(stage)
    for handler in stage.handlers:
        lid = logical_id(handler)
        name = stage.function_name(handler)
        properties: Json = {
            "FunctionName": name,
            "Environment": {"Variables": env},
            "Layers": [pandas_layer()],
        }
        if handler in stage.asynchronous:
            properties["EventInvokeConfig"] = {
                "MaximumRetryAttempts": ASYNC_RETRIES,
                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": arn_of("DeadLetterQueue")}},
            }
            event: Json = {"DeadLetterConfig": {"Arn": arn_of("DeadLetterQueue")}}
            if stage.asynchronous[handler] == "s3":
                # Only this stack's bucket: other buckets with EventBridge on must not reach ingest.
                event["Pattern"] = {"detail": {"bucket": {"name": [ref("LakeBucket")]}}}
            properties["Events"] = {f"{lid}Event": {"Properties": event}}
        resources[lid] = {
            "Metadata": skip(*FUNCTION_SKIPS),
            "DependsOn": [f"{lid}LogGroup"],
            "Properties": properties,
        }
        resources[f"{lid}Role"] = {
            "Properties": {
                "Policies": [
                    {
                        "PolicyName": f"{handler}-least-privilege",
                        "PolicyDocument": function_policy(stage, handler),
                    }
                ]
            }
        }
        resources[f"{lid}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Metadata": skip(
                ("CKV_AWS_158", "CloudWatch Logs encrypts every log group; no customer-managed key needed.")
            ),
            "Properties": {"LogGroupName": f"/aws/lambda/{name}", "RetentionInDays": LOG_RETENTION_DAYS},
        }
    return resources


# -- the state machine ---------------------------------------------------------------------------------

#: ``aws-sdk:sagemaker:<operation>`` -> the resource (name pattern) that operation acts on.
SAGEMAKER_TASK_RESOURCES = {
    "ProcessingJob": ("processing-job", f"{JOB_PREFIX}*"),
    "TrainingJob": ("training-job", f"{JOB_PREFIX}*"),
    "EndpointConfig": ("endpoint-config", f"{JOB_PREFIX}*"),
    "Endpoint": ("endpoint", None),
    "Model": ("model", f"{JOB_PREFIX}*"),
}


def sagemaker_task_actions(definition: Any) -> dict[str, tuple[str, str]]:
    """IAM action -> (resource type, name pattern) for every ``aws-sdk:sagemaker:*`` task."""
    found: dict[str, tuple[str, str]] = {}
    stack = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            resource = node.get("Resource")
            if node.get("Type") == "Task" and isinstance(resource, str) and ":aws-sdk:sagemaker:" in resource:
                operation = resource.rsplit(":", 1)[1]
                action = operation[:1].upper() + operation[1:]
                for suffix, kind in sorted(SAGEMAKER_TASK_RESOURCES.items(), key=lambda kv: -len(kv[0])):
                    if action.endswith(suffix):
                        found[f"sagemaker:{action}"] = kind  # type: ignore[assignment]
                        break
                else:
                    raise ValueError(f"no IAM resource known for the state machine task {resource}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def state_machine_resources(stage: Stage, definition: Json, handlers: tuple[str, ...]) -> Json:
    placeholders = sorted(set(PLACEHOLDER.findall(json.dumps(definition))))
    substitutions: Json = {}
    lambda_targets: list[Json] = []
    by_placeholder = {f"{logical_id(h)}FunctionArn": h for h in handlers}
    for name in placeholders:
        if name in by_placeholder:
            substitutions[name] = arn_of(logical_id(by_placeholder[name]))
            lambda_targets += [
                arn_of(logical_id(by_placeholder[name])),
                sub(f"${{{logical_id(by_placeholder[name])}.Arn}}:*"),
            ]
        elif name == "SageMakerRoleArn":
            substitutions[name] = arn_of("SageMakerExecutionRole")
        elif name == "AlertsTopicArn":
            substitutions[name] = ref("AlertsTopic")
        elif name == "LakeBucket":
            substitutions[name] = ref("LakeBucket")
        elif name == "EndpointName":
            substitutions[name] = stage.endpoint_name
        else:
            raise KeyError(f"no template value for the state machine placeholder ${{{name}}}")
    by_kind: dict[tuple[str, str], list[str]] = {}
    for action, (kind, pattern) in sagemaker_task_actions(definition).items():
        by_kind.setdefault((kind, pattern or stage.endpoint_name), []).append(action)
    statements = [
        statement(
            f"SageMaker{''.join(part.capitalize() for part in kind.split('-'))}",
            sorted(actions),
            stage.sagemaker_arn(kind, pattern),
        )
        for (kind, pattern), actions in sorted(by_kind.items())
    ]
    if lambda_targets:
        statements.append(statement("InvokePipelineSteps", ["lambda:InvokeFunction"], lambda_targets))
    if "arn:aws:states:::sns:publish" in json.dumps(definition):
        statements.append(statement("Notify", ["sns:Publish"], ref("AlertsTopic")))
    if "SageMakerRoleArn" in placeholders:
        statements.append(_pass_sagemaker_role())
    statements.append(
        statement(
            "ExecutionLogs",
            [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "*",  # CloudWatch Logs vended-log delivery actions support no resource-level permissions
        )
    )
    return {
        "TrainingPipelineRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": f"Assumed by the {stage.state_machine_name} state machine",
                "AssumeRolePolicyDocument": assume_role("states.amazonaws.com"),
                "Policies": [{"PolicyName": "pipeline-steps", "PolicyDocument": document(statements)}],
            },
        },
        "TrainingPipeline": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineName": stage.state_machine_name,
                "StateMachineType": "STANDARD",
                "RoleArn": arn_of("TrainingPipelineRole"),
                "Definition": definition,
                "DefinitionSubstitutions": substitutions,
                "LoggingConfiguration": {
                    "Level": "ERROR",
                    "IncludeExecutionData": False,
                    "Destinations": [
                        {"CloudWatchLogsLogGroup": {"LogGroupArn": arn_of("TrainingPipelineLogGroup")}}
                    ],
                },
            },
        },
    }


# -- outputs and assembly ----------------------------------------------------------------------------


def outputs(stage: Stage) -> Json:
    out: Json = {
        "LakeBucketName": {"Description": "Upload reviews under raw/<channel>/", "Value": ref("LakeBucket")},
        "AlertsTopicArn": {"Description": "Subscribe to get alerts", "Value": ref("AlertsTopic")},
        "TrainingPipelineArn": {
            "Description": "The training state machine",
            "Value": ref("TrainingPipeline"),
        },
        "EndpointName": {
            "Description": "SageMaker endpoint the pipeline deploys to",
            "Value": stage.endpoint_name,
        },
        "SageMakerExecutionRoleArn": {"Value": arn_of("SageMakerExecutionRole")},
        "TrainingPipelineRoleArn": {"Value": arn_of("TrainingPipelineRole")},
        "DeadLetterQueueUrl": {"Description": "Failed asynchronous events", "Value": ref("DeadLetterQueue")},
        "DeadLetterQueueArn": {"Value": arn_of("DeadLetterQueue")},
        "IdempotencyTableName": {"Value": ref("IdempotencyTable")},
        "PipelineTableName": {"Value": ref("PipelineTable")},
        "GlueDatabaseName": {"Value": ref("GlueDatabase")},
        "ModelPackageGroupName": {"Value": stage.model_package_group},
    }
    for handler in stage.handlers:
        lid = logical_id(handler)
        out[f"{lid}RoleArn"] = {"Value": arn_of(f"{lid}Role")}
    return out


def mappings() -> Json:
    return {
        "Regional": {
            region: {
                "DlcAccount": DLC_ACCOUNTS[region],
                "LayerAccount": r.layer_account,
                "LayerVersion": str(r.layer_version),
            }
            for region, r in sorted(REGIONS.items())
        }
    }


def load_stage(stage_name: str, root: Path = ROOT) -> Stage:
    """The stage's environment from ``.chalice/config.json`` and the handlers of ``app.py``."""
    config = json.loads((root / ".chalice" / "config.json").read_text())
    if stage_name not in config.get("stages", {}):
        raise KeyError(f"stage {stage_name!r} is not in .chalice/config.json")
    env = {
        **config.get("environment_variables", {}),
        **config["stages"][stage_name].get("environment_variables", {}),
    }
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import app as chalice_app

    handlers = tuple(chalice_app.app.handler_map)
    asynchronous: dict[str, str] = {}
    for source in chalice_app.app.event_sources:
        kind = type(source).__name__
        if kind == "CloudWatchEventConfig":
            pattern: dict[str, Any] = getattr(source, "event_pattern", {})
            from_s3 = "aws.s3" in pattern.get("source", [])
            asynchronous[source.name] = "s3" if from_s3 else "pattern"
        elif kind == "ScheduledEventConfig":
            asynchronous[source.name] = "schedule"
        else:
            raise ValueError(f"{source.name}: event source {kind} is not wired to the dead-letter queue")
    return Stage(stage_name, {k: str(v) for k, v in env.items()}, handlers, asynchronous)


def build(stage_name: str, root: Path = ROOT) -> Json:
    stage = load_stage(stage_name, root)
    definitions = sorted((root / "statemachines").glob("*.asl.json"))
    if [p.name for p in definitions] != ["training_pipeline.asl.json"]:
        raise ValueError(f"expected one state machine definition, found {[p.name for p in definitions]}")
    definition = json.loads(definitions[0].read_text())
    return {
        "Description": f"ReviewSense ({stage.name}): every resource of the app "
        f"(make package STAGE={stage.name})",
        "Mappings": mappings(),
        "Resources": {
            **shared_resources(stage),
            **function_resources(stage),
            **state_machine_resources(stage, definition, stage.handlers),
        },
        "Outputs": outputs(stage),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(build(args.stage), indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
