"""The real-time feedback arm's resources and permissions: queues, table, and three functions' policies.

- ``FeedbackQueue`` (``reviewsense-<stage>-feedback``, the name ``app.py`` packages its SQS event with):
  visibility timeout six times the function timeout (AWS's advice for Lambda event sources), and a
  redrive policy to ``FeedbackDeadLetterQueue`` (``<queue>-dlq``) after ``MAX_RECEIVE_COUNT`` receives.
  The fan-in's event source reads it with ``FunctionResponseTypes: ["ReportBatchItemFailures"]`` (from
  ``app.SQS_FUNCTION_RESPONSE_TYPES``; see ``chalicelib/services/fanin.py``).
- ``ReviewQueue``: low-confidence predictions waiting for a human label.
- ``FeedbackTable``: one item per feedback id, the burst counters and failed messages' last errors,
  key ``id``, TTL attribute ``expires_at``.

Policies: ``feedback_fanin`` reads its queue, reads feedback files, writes quarantine and predictions,
catalogs ``predictions``, uses the table, invokes the endpoint, publishes alerts and sends review
requests; ``feedback_upload`` and the REST API's function (``POST /feedback``) only send to the queue.
"""

from __future__ import annotations

from infra.template_base import (
    API_HANDLER,
    LAKE_BUCKET_ARN,
    Json,
    Stage,
    arn_of,
    dynamodb_table,
    lake_zone,
    ref,
    skip,
    statement,
    sub,
)

FUNCTION_TIMEOUT_S = 300  # ``lambda_timeout`` in .chalice/config.json
MAX_RECEIVE_COUNT = 3
RETENTION_S = 14 * 24 * 3600

_SQS_SSE = (
    "CKV_AWS_27",
    "Encrypted with SQS-managed keys (SqsManagedSseEnabled), which checkov does not recognise.",
)


def _queue(name: str, visibility_s: int | None = None, redrive_to: str | None = None) -> Json:
    properties: Json = {
        "QueueName": name,
        "MessageRetentionPeriod": RETENTION_S,
        "SqsManagedSseEnabled": True,
    }
    if visibility_s is not None:
        properties["VisibilityTimeout"] = visibility_s
    if redrive_to is not None:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": arn_of(redrive_to),
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        }
    return {"Type": "AWS::SQS::Queue", "Metadata": skip(_SQS_SSE), "Properties": properties}


def feedback_resources(stage: Stage) -> Json:
    queue = stage.feedback_queue_name
    api: Json = {}
    if API_HANDLER in stage.handlers:
        # Chalice's REST API (``POST /feedback``) gets a per-stage name instead of the swagger title.
        api["RestAPI"] = {
            # ``infra.check_template`` hands these to the Stage the SAM transform generates.
            "Metadata": skip(
                (
                    "CKV_AWS_76",
                    "Access logs need the account-wide API Gateway CloudWatch role "
                    "(AWS::ApiGateway::Account), which one app's stack must not set; the function logs "
                    "every request it accepts.",
                ),
                ("CKV_AWS_120", "POST /feedback enqueues new feedback on every call: a cache would drop it."),
            ),
            "Properties": {"Name": f"{stage.prefix}-api", "TracingEnabled": True},
        }
    return {
        **api,
        "FeedbackQueue": _queue(queue, 6 * FUNCTION_TIMEOUT_S, "FeedbackDeadLetterQueue"),
        "FeedbackDeadLetterQueue": _queue(f"{queue}-dlq"),
        "ReviewQueue": _queue(f"{stage.prefix}-feedback-review"),
        # The salt of customer references (salted SHA-256 of an address, phone or handle): generated per
        # stage, never in the repository, so a reference cannot be reversed by hashing guessed addresses.
        "CustomerRefSalt": {
            "Type": "AWS::SecretsManager::Secret",
            # Not rotated on purpose: a new salt would give every customer a new reference and break the
            # joins of feedback already stored.
            "Metadata": skip(
                (
                    "CKV_AWS_149",
                    "Encrypted with the AWS-managed key; read only by CloudFormation when it deploys.",
                ),
            ),
            "Properties": {
                "Description": f"{stage.prefix}: salt of the customer references in feedback records",
                "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
            },
        },
        "FeedbackTable": dynamodb_table(
            f"{stage.prefix}-feedback",
            "Encrypted with the DynamoDB-managed KMS key; it holds masked feedback and counters.",
            ttl_attribute="expires_at",
        ),
    }


def feedback_environment() -> Json:
    return {
        "REVIEWSENSE_FEEDBACK_QUEUE": {"Fn::GetAtt": ["FeedbackQueue", "QueueName"]},
        "REVIEWSENSE_FEEDBACK_DLQ": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "QueueName"]},
        "REVIEWSENSE_REVIEW_QUEUE": {"Fn::GetAtt": ["ReviewQueue", "QueueName"]},
        "REVIEWSENSE_FEEDBACK_TABLE": ref("FeedbackTable"),
        # Resolved by CloudFormation at deploy time; the local stage (.chalice/config.json) has a fixed salt.
        "REVIEWSENSE_CUSTOMER_REF_SALT": {
            "Fn::Sub": "{{resolve:secretsmanager:${CustomerRefSalt}:SecretString}}"
        },
    }


def feedback_outputs() -> Json:
    return {
        "FeedbackQueueUrl": {"Description": "Send feedback envelopes here", "Value": ref("FeedbackQueue")},
        "FeedbackDeadLetterQueueUrl": {"Value": ref("FeedbackDeadLetterQueue")},
        "ReviewQueueUrl": {
            "Description": "Low-confidence feedback for human review",
            "Value": ref("ReviewQueue"),
        },
        "FeedbackTableName": {"Value": ref("FeedbackTable")},
    }


def sqs_event(response_types: list[str]) -> Json:
    """What the merge adds to a function's SQS event: the response types Chalice cannot write.

    The queue stays the ARN Chalice builds from the name in ``app.py``, the same name as the queue's here
    (``Stage.feedback_queue_name``, checked by ``tests/deploy``): a dictionary merge cannot replace the
    ``Fn::Sub`` with another intrinsic. The function already depends on the queue through its environment
    (``REVIEWSENSE_FEEDBACK_QUEUE`` is the queue's ``QueueName``), so the mapping is created after it.
    """
    return {"Properties": {"FunctionResponseTypes": response_types}} if response_types else {}


def _send_feedback() -> Json:
    return statement("SendFeedback", ["sqs:GetQueueUrl", "sqs:SendMessage"], arn_of("FeedbackQueue"))


def feedback_fanin_policy(stage: Stage, handler: str) -> list[Json]:
    return [
        statement(
            "ReadFeedbackQueue",
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            ],
            arn_of("FeedbackQueue"),
        ),
        statement("ReadFeedbackFiles", ["s3:GetObject"], lake_zone("raw/feedback/")),
        statement(
            "WriteQuarantineAndPredictions",
            ["s3:PutObject"],
            [lake_zone("quarantine/feedback/"), lake_zone("curated/predictions/")],
        ),
        # Without ListBucket, S3 answers a missing key with 403 instead of 404.
        statement("ListLake", ["s3:ListBucket"], LAKE_BUCKET_ARN),
        statement(
            "CatalogPredictions",
            [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:GetPartition",
                "glue:CreatePartition",
            ],
            [
                sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog"),
                sub(
                    f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:database/{stage.glue_database}"
                ),
                sub(
                    f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:table/{stage.glue_database}/predictions"
                ),
            ],
        ),
        statement(
            "FeedbackItems",
            ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            arn_of("FeedbackTable"),
        ),
        statement(
            "Score", ["sagemaker:InvokeEndpoint"], stage.sagemaker_arn("endpoint", stage.endpoint_name)
        ),
        statement("Alerts", ["sns:Publish"], ref("AlertsTopic")),
        statement("HumanReview", ["sqs:GetQueueUrl", "sqs:SendMessage"], arn_of("ReviewQueue")),
    ]


def feedback_upload_policy(stage: Stage, handler: str) -> list[Json]:
    return [_send_feedback()]


def api_policy(stage: Stage, handler: str) -> list[Json]:
    # The route's caller is authenticated by API Gateway (IAM authorizer); the function only enqueues.
    return [statement("SendPostedFeedback", ["sqs:GetQueueUrl", "sqs:SendMessage"], arn_of("FeedbackQueue"))]
