"""What the merge adds to each Chalice function: name, environment, layer, log group, role policy, DLQ.

Chalice emits the functions; for each handler this gives it its explicit name and log group, the stack's
resource names and ARNs as environment variables (so ``.chalice/config.json`` holds no ARN, region or
account), the pandas layer, its own least-privilege policy (``infra.template_iam``) and, for an
asynchronously invoked function, the dead-letter queue: Lambda's on-failure destination after its
retries, and the rule target's own dead-letter config for events EventBridge could not deliver. An
SQS-triggered function reads this stack's queue (whose redrive policy is its dead-letter queue).
"""

from __future__ import annotations

from infra.regions import PANDAS_LAYER_NAME
from infra.template_base import (
    LOG_RETENTION_DAYS,
    Json,
    Stage,
    arn_of,
    logical_id,
    ref,
    regional,
    role_id,
    skip,
    sub,
)
from infra.template_feedback import feedback_environment, sqs_event
from infra.template_iam import function_policy

#: Lambda's own retries of an asynchronous invocation before the on-failure destination.
ASYNC_RETRIES = 2


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
        **feedback_environment(),
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
        if handler in stage.sqs:
            # Chalice names the event and builds the queue's ARN from its name; add the response types.
            properties["Events"] = {f"{lid}SqsEventSource": sqs_event(stage.sqs[handler])}
        resources[lid] = {
            "Metadata": skip(*FUNCTION_SKIPS),
            "DependsOn": [f"{lid}LogGroup"],
            "Properties": properties,
        }
        resources[role_id(handler)] = {
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
