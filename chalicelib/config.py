"""One frozen settings object, built once from the environment.

Every name that differs between the local cloud and AWS (bucket, tables, topics, endpoint) lives
here, so handlers, services and adapters never read ``os.environ`` themselves. Tests build
``Settings`` directly. The lake's catalogued table names are the same everywhere: they live with
their schemas in ``chalicelib.domain.tables``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.images import JobKind, framework_image_uri

APP_NAME = "reviewsense"


@dataclass(frozen=True)
class Settings:
    """Configuration of one deployment stage (``local``, ``dev``, ``prod`` ...)."""

    stage: str = "local"
    region: str = "us-east-1"
    lake_bucket: str = "reviewsense-lake"
    raw_prefix: str = "raw/"
    curated_prefix: str = "curated/"
    quarantine_prefix: str = "quarantine/"
    glue_database: str = "reviewsense"
    idempotency_table: str = "reviewsense-local-idempotency"
    event_bus: str = "default"
    event_source: str = "reviewsense.ingest"
    alerts_topic_arn: str = ""
    #: Receives of an SQS message before the queue's redrive policy moves it to its ``-dlq`` queue.
    queue_max_receive_count: int = 3
    #: Largest accepted value of any single field, in characters; longer records are quarantined.
    max_field_chars: int = 20_000
    #: Largest decompressed size of a raw object, in bytes, checked while streaming; larger objects are
    #: quarantined whole (``object_too_large``), so this bounds the ingest function's memory. Parsing
    #: peaks at about 16x the decompressed size in RSS (``make bench-ingest-memory``): 64 MiB fits the
    #: functions' 2048 MB with room to spare.
    max_object_bytes: int = 64 * 1024 * 1024
    #: Reconciliation leaves raw objects changed less than this many seconds ago to their own event.
    reconcile_grace_seconds: int = 900
    #: ``duckdb`` (Parquet read straight from S3) or ``athena`` (awswrangler) for ``reviewsense query``.
    query_engine: str = "duckdb"
    athena_workgroup: str = "primary"
    endpoint_url: str | None = None
    # -- training pipeline --------------------------------------------------------------------------
    account_id: str = "123456789012"
    sagemaker_role_arn: str = "arn:aws:iam::123456789012:role/reviewsense-local-execution"
    #: Container images; empty: the PyTorch framework image for the region and instance type
    #: (``chalicelib.images``: a GPU instance type gets the GPU image).
    training_image: str = ""
    processing_image: str = ""
    inference_image: str = ""
    training_instance_type: str = "ml.m5.2xlarge"
    processing_instance_type: str = "ml.m5.xlarge"
    inference_instance_type: str = "ml.m5.large"
    model_package_group: str = "reviewsense-sentiment"
    endpoint_name: str = "reviewsense-local-sentiment"
    pipeline_table: str = "reviewsense-local-pipeline"
    pipeline_state_machine_arn: str = ""
    code_prefix: str = "code/"
    pipeline_prefix: str = "pipeline/"
    #: Share of traffic a newly approved model (the challenger) gets next to the champion.
    challenger_weight: float = 0.1
    #: Seconds between two status polls of a SageMaker job in the state machine.
    poll_seconds: int = 60
    #: How long an endpoint may stay Creating / Updating before the deployment counts as failed.
    endpoint_deploy_timeout_seconds: int = 3600
    max_training_seconds: int = 3 * 3600
    #: Start the pipeline when ingestion has added at least this many labelled reviews since the last run.
    retrain_threshold: int = 1000
    gate_min_macro_f1: float = 0.60
    gate_min_negative_recall: float = 0.55
    gate_tolerance: float = 0.01
    #: Default hyperparameters of a pipeline run (JSON); the bounded demo budget locally.
    training_hyperparameters: str = "{}"
    code_version: str = "unknown"
    # -- real-time feedback fan-in ------------------------------------------------------------------
    #: The queue every feedback entry point sends to and the fan-in Lambda reads (``feedback_queue_name``).
    feedback_queue: str = "reviewsense-local-feedback"
    #: Where the queue's redrive policy moves a message after its maxReceiveCount (``<queue>-dlq``).
    feedback_dlq: str = "reviewsense-local-feedback-dlq"
    #: Low-confidence predictions wait here for a human label (text, prediction, probabilities).
    review_queue: str = "reviewsense-local-feedback-review"
    #: DynamoDB, key ``id``: one item per feedback id (its prediction and what was done with it) and
    #: one burst counter per product and window (``burst#<product>#<window>``, expiring via ``expires_at``).
    feedback_table: str = "reviewsense-local-feedback"
    #: Upstream systems drop feedback files under ``<prefix><channel>/``; ingest leaves them to the fan-in.
    feedback_raw_prefix: str = "raw/feedback/"
    #: Curated predictions (Glue table ``predictions``), partitioned by channel and date.
    predictions_prefix: str = "curated/predictions/"
    #: Messages and items the fan-in could not parse, one JSON object each with its reason.
    feedback_quarantine_prefix: str = "quarantine/feedback/"
    #: A negative prediction at or above this probability alerts (``high`` severity from
    #: ``alert_high_threshold``); one whose top probability is below ``review_threshold`` goes to human
    #: review. ``burst_count`` negatives for one product within ``burst_window_s`` make one burst alert.
    alert_threshold: float = 0.7
    alert_high_threshold: float = 0.9
    review_threshold: float = 0.6
    burst_count: int = 5
    burst_window_s: int = 900
    #: Salt of the customer-reference hash (never stored next to it); every stage sets its own.
    customer_ref_salt: str = "reviewsense-local-salt"
    #: Largest feedback body accepted in a message or by ``POST /feedback`` (SQS's classic limit).
    max_message_bytes: int = 256 * 1024
    #: Calls to the endpoint per batch (1 + retries) on throttling, 5xx or an overloaded model, with
    #: exponential backoff from ``endpoint_backoff_s`` (full jitter), capped at ``endpoint_backoff_max_s``.
    endpoint_retry_attempts: int = 4
    endpoint_backoff_s: float = 0.2
    endpoint_backoff_max_s: float = 5.0

    def __post_init__(self) -> None:
        jobs: tuple[tuple[JobKind, str], ...] = (
            ("training", self.training_instance_type),
            ("processing", self.processing_instance_type),
            ("inference", self.inference_instance_type),
        )
        for kind, instance_type in jobs:
            if not getattr(self, f"{kind}_image"):
                object.__setattr__(
                    self, f"{kind}_image", framework_image_uri(kind, self.region, instance_type)
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``REVIEWSENSE_*`` variables (set per stage in ``.chalice/config.json``)."""
        e = os.environ if env is None else env
        stage = e.get("REVIEWSENSE_STAGE", cls.stage)
        return cls(
            stage=stage,
            region=e.get("AWS_REGION", e.get("AWS_DEFAULT_REGION", cls.region)),
            lake_bucket=e.get("REVIEWSENSE_LAKE_BUCKET", cls.lake_bucket),
            glue_database=e.get("REVIEWSENSE_GLUE_DATABASE", cls.glue_database),
            idempotency_table=e.get("REVIEWSENSE_IDEMPOTENCY_TABLE", f"{APP_NAME}-{stage}-idempotency"),
            event_bus=e.get("REVIEWSENSE_EVENT_BUS", cls.event_bus),
            alerts_topic_arn=e.get("REVIEWSENSE_ALERTS_TOPIC_ARN", ""),
            queue_max_receive_count=int(
                e.get("REVIEWSENSE_QUEUE_MAX_RECEIVE_COUNT", cls.queue_max_receive_count)
            ),
            max_field_chars=int(e.get("REVIEWSENSE_MAX_FIELD_CHARS", cls.max_field_chars)),
            max_object_bytes=int(e.get("REVIEWSENSE_MAX_OBJECT_BYTES", cls.max_object_bytes)),
            reconcile_grace_seconds=int(
                e.get("REVIEWSENSE_RECONCILE_GRACE_SECONDS", cls.reconcile_grace_seconds)
            ),
            query_engine=e.get("REVIEWSENSE_QUERY_ENGINE", cls.query_engine),
            athena_workgroup=e.get("REVIEWSENSE_ATHENA_WORKGROUP", cls.athena_workgroup),
            endpoint_url=e.get("AWS_ENDPOINT_URL") or None,
            account_id=e.get("REVIEWSENSE_ACCOUNT_ID", cls.account_id),
            sagemaker_role_arn=e.get("REVIEWSENSE_SAGEMAKER_ROLE_ARN", cls.sagemaker_role_arn),
            training_image=e.get("REVIEWSENSE_TRAINING_IMAGE", ""),
            processing_image=e.get("REVIEWSENSE_PROCESSING_IMAGE", ""),
            inference_image=e.get("REVIEWSENSE_INFERENCE_IMAGE", ""),
            training_instance_type=e.get("REVIEWSENSE_TRAINING_INSTANCE_TYPE", cls.training_instance_type),
            processing_instance_type=e.get(
                "REVIEWSENSE_PROCESSING_INSTANCE_TYPE", cls.processing_instance_type
            ),
            inference_instance_type=e.get("REVIEWSENSE_INFERENCE_INSTANCE_TYPE", cls.inference_instance_type),
            model_package_group=e.get("REVIEWSENSE_MODEL_PACKAGE_GROUP", cls.model_package_group),
            endpoint_name=e.get("REVIEWSENSE_ENDPOINT_NAME", f"{APP_NAME}-{stage}-sentiment"),
            pipeline_table=e.get("REVIEWSENSE_PIPELINE_TABLE", f"{APP_NAME}-{stage}-pipeline"),
            pipeline_state_machine_arn=e.get("REVIEWSENSE_PIPELINE_STATE_MACHINE_ARN", ""),
            challenger_weight=float(e.get("REVIEWSENSE_CHALLENGER_WEIGHT", cls.challenger_weight)),
            poll_seconds=int(e.get("REVIEWSENSE_POLL_SECONDS", cls.poll_seconds)),
            endpoint_deploy_timeout_seconds=int(
                e.get("REVIEWSENSE_ENDPOINT_DEPLOY_TIMEOUT_SECONDS", cls.endpoint_deploy_timeout_seconds)
            ),
            max_training_seconds=int(e.get("REVIEWSENSE_MAX_TRAINING_SECONDS", cls.max_training_seconds)),
            retrain_threshold=int(e.get("REVIEWSENSE_RETRAIN_THRESHOLD", cls.retrain_threshold)),
            gate_min_macro_f1=float(e.get("REVIEWSENSE_GATE_MIN_MACRO_F1", cls.gate_min_macro_f1)),
            gate_min_negative_recall=float(
                e.get("REVIEWSENSE_GATE_MIN_NEGATIVE_RECALL", cls.gate_min_negative_recall)
            ),
            gate_tolerance=float(e.get("REVIEWSENSE_GATE_TOLERANCE", cls.gate_tolerance)),
            training_hyperparameters=e.get(
                "REVIEWSENSE_TRAINING_HYPERPARAMETERS", cls.training_hyperparameters
            ),
            code_version=e.get("REVIEWSENSE_CODE_VERSION", cls.code_version),
            feedback_queue=feedback_queue_name(e),
            feedback_dlq=e.get("REVIEWSENSE_FEEDBACK_DLQ", f"{feedback_queue_name(e)}-dlq"),
            review_queue=e.get("REVIEWSENSE_REVIEW_QUEUE", f"{APP_NAME}-{stage}-feedback-review"),
            feedback_table=e.get("REVIEWSENSE_FEEDBACK_TABLE", f"{APP_NAME}-{stage}-feedback"),
            alert_threshold=float(e.get("REVIEWSENSE_ALERT_THRESHOLD", cls.alert_threshold)),
            alert_high_threshold=float(e.get("REVIEWSENSE_ALERT_HIGH_THRESHOLD", cls.alert_high_threshold)),
            review_threshold=float(e.get("REVIEWSENSE_REVIEW_THRESHOLD", cls.review_threshold)),
            burst_count=int(e.get("REVIEWSENSE_BURST_COUNT", cls.burst_count)),
            burst_window_s=int(e.get("REVIEWSENSE_BURST_WINDOW_S", cls.burst_window_s)),
            customer_ref_salt=e.get("REVIEWSENSE_CUSTOMER_REF_SALT", cls.customer_ref_salt),
            max_message_bytes=int(e.get("REVIEWSENSE_MAX_MESSAGE_BYTES", cls.max_message_bytes)),
            endpoint_retry_attempts=int(
                e.get("REVIEWSENSE_ENDPOINT_RETRY_ATTEMPTS", cls.endpoint_retry_attempts)
            ),
            endpoint_backoff_s=float(e.get("REVIEWSENSE_ENDPOINT_BACKOFF_S", cls.endpoint_backoff_s)),
            endpoint_backoff_max_s=float(
                e.get("REVIEWSENSE_ENDPOINT_BACKOFF_MAX_S", cls.endpoint_backoff_max_s)
            ),
        )


def feedback_queue_name(env: Mapping[str, str] | None = None) -> str:
    """The fan-in queue's name: ``REVIEWSENSE_FEEDBACK_QUEUE``, else ``reviewsense-<stage>-feedback``.

    ``app.py`` needs it when it is imported, because ``@app.on_sqs_message`` takes the queue's name:
    ``chalice package --stage S`` (and ``chalice deploy``) put stage S's ``environment_variables`` from
    ``.chalice/config.json`` into the environment before importing ``app.py``, so every stage that sets
    ``REVIEWSENSE_STAGE`` gets its own queue; the Lambda runtime and the local cloud have the same
    variables. No AWS call, no settings cache: safe at import time.
    """
    e = os.environ if env is None else env
    stage = e.get("REVIEWSENSE_STAGE", Settings.stage)
    return e.get("REVIEWSENSE_FEEDBACK_QUEUE") or f"{APP_NAME}-{stage}-feedback"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (Lambda containers build them once per cold start)."""
    return Settings.from_env()
