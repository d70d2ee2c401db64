"""The template's resources outside the functions and the state machine.

The lake bucket (encrypted, private, versioned, TLS-only, EventBridge notifications on) and its policy,
the idempotency and pipeline tables, the dead-letter queue and its policy, the alerts topic, the Glue
database, the state machine's log group and the SageMaker execution role.
"""

from __future__ import annotations

from infra.template_base import (
    LAKE_BUCKET_ARN,
    LOG_RETENTION_DAYS,
    Json,
    Stage,
    arn_of,
    assume_role,
    document,
    dynamodb_table,
    lake_zone,
    ref,
    skip,
    sub,
)
from infra.template_iam import sagemaker_statements

DLQ_RETENTION_SECONDS = 14 * 24 * 3600


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
        # Powertools' DynamoDBPersistenceLayer: partition key "id", expiry in "expiration".
        "IdempotencyTable": dynamodb_table(
            f"{p}-idempotency",
            "Encrypted with the DynamoDB-managed KMS key (SSEEnabled); a customer-managed key "
            "adds cost and key administration for records that expire within days.",
            ttl_attribute="expiration",
        ),
        # Items keyed by "id": "trigger#new-labelled-reviews", "deployments#<endpoint>".
        "PipelineTable": dynamodb_table(
            f"{p}-pipeline",
            "Encrypted with the DynamoDB-managed KMS key; it holds counters and deployment "
            "history, nothing that needs a customer-managed key.",
        ),
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
