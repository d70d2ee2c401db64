"""The template's IAM policies: each function's least-privilege policy, and the SageMaker execution role's.

``POLICIES`` has one entry per Chalice handler: what that function may do beyond writing its own log
group (and, for an asynchronously invoked one, sending to the dead-letter queue), scoped to this stack's
resources. A handler without an entry is an error, not a silent default. ``sagemaker_statements`` is what
the training and processing jobs and the endpoint may do (``infra.template_shared`` puts it on the
execution role); ``pass_sagemaker_role`` is shared by the deploy function and the state machine.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.template_base import (
    API_HANDLER,
    JOB_PREFIX,
    LAKE_BUCKET_ARN,
    TRAINING_LOG_GROUP,
    Json,
    Stage,
    arn_of,
    document,
    lake_zone,
    logical_id,
    ref,
    regional,
    statement,
    sub,
)
from infra.template_feedback import api_policy, feedback_fanin_policy, feedback_upload_policy


def sagemaker_statements(stage: Stage) -> list[Json]:
    """What jobs and the endpoint need: code, curated data and run artifacts; logs, metrics, images.

    ``batch/`` is where ``reviewsense score --batch`` puts a transform job's input and the job writes
    its ``.out`` files.
    """
    return [
        statement(
            "ReadCodeDataAndArtifacts",
            ["s3:GetObject"],
            [
                lake_zone("code/"),
                lake_zone("curated/"),
                lake_zone("pipeline/"),
                lake_zone("models/"),
                lake_zone("batch/"),
            ],
        ),
        statement(
            "WriteRunArtifactsAndCapture",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [lake_zone("pipeline/"), lake_zone("capture/"), lake_zone("batch/")],
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


def pass_sagemaker_role() -> Json:
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
        pass_sagemaker_role(),
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
    "feedback_fanin": feedback_fanin_policy,
    "feedback_upload": feedback_upload_policy,
    API_HANDLER: api_policy,  # every @app.route: POST /feedback
}


def function_policy(stage: Stage, handler: str) -> Json:
    if handler not in POLICIES:
        raise KeyError(f"no IAM policy for handler {handler!r}: add one to infra.template_iam.POLICIES")
    statements = [*_logs(stage, handler), *POLICIES[handler](stage, handler)]
    if handler in stage.asynchronous:
        statements += _dead_letters(stage, handler)
    return document(statements)
