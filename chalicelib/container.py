"""Builds services from the settings, creating and caching boto3 clients on first use.

Nothing here runs at import time, so ``chalice package`` and the tests can import ``app.py`` without
credentials, and mocks or the local cloud's endpoint apply to every client.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from chalicelib.config import Settings, get_settings


class Container:
    def __init__(self, settings: Settings | None = None, session: Any | None = None) -> None:
        self._settings = settings
        self._session = session

    @cached_property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    @cached_property
    def session(self) -> Any:
        if self._session is not None:
            return self._session
        import boto3

        return boto3.session.Session(region_name=self.settings.region)

    def client(self, service: str) -> Any:
        cache: dict[str, Any] = self.__dict__.setdefault("_clients", {})
        if service not in cache:
            cache[service] = self.session.client(service, endpoint_url=self.settings.endpoint_url)
        return cache[service]

    @cached_property
    def ingest_service(self) -> Any:
        from chalicelib.adapters.events import EventBridgePublisher
        from chalicelib.adapters.glue import GlueCatalog
        from chalicelib.adapters.idempotency import DynamoDBRunOnce
        from chalicelib.adapters.parquet import WranglerParquetWriter
        from chalicelib.adapters.s3 import S3ObjectStore
        from chalicelib.services.ingest import IngestService

        s = self.settings
        return IngestService(
            settings=s,
            store=S3ObjectStore(self.client("s3")),
            writer=WranglerParquetWriter(self.session),
            catalog=GlueCatalog(self.client("glue")),
            publisher=EventBridgePublisher(self.client("events"), s.event_bus, s.event_source),
            run_once=DynamoDBRunOnce(self.client("dynamodb"), s.idempotency_table),
        )

    @cached_property
    def reconcile_service(self) -> Any:
        from chalicelib.adapters.s3 import S3ObjectStore
        from chalicelib.services.reconcile import ReconcileService

        return ReconcileService(self.settings, S3ObjectStore(self.client("s3")), self.ingest_service)

    @cached_property
    def feedback_store(self) -> Any:
        from chalicelib.adapters.feedback_store import FeedbackStore

        return FeedbackStore(self.client("dynamodb"), self.settings.feedback_table)

    @cached_property
    def feedback_queue(self) -> Any:
        from chalicelib.adapters.messaging import SqsQueue

        return SqsQueue(self.client("sqs"), self.settings.feedback_queue)

    @cached_property
    def feedback_intake(self) -> Any:
        from chalicelib.services.feedback_intake import FeedbackIntake

        return FeedbackIntake(self.settings, self.feedback_queue)

    @cached_property
    def runtime_client(self) -> Any:
        """``sagemaker-runtime`` without botocore's own retries: the scorer retries with backoff itself."""
        from botocore.config import Config

        return self.session.client(
            "sagemaker-runtime",
            endpoint_url=self.settings.endpoint_url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

    @cached_property
    def scorer(self) -> Any:
        """The endpoint, one ``InvokeEndpoint`` per batch, retried with backoff."""
        from chalicelib.adapters.runtime import SageMakerRuntimeScorer

        s = self.settings
        return SageMakerRuntimeScorer(
            self.runtime_client,
            s.endpoint_name,
            attempts=s.endpoint_retry_attempts,
            backoff_s=s.endpoint_backoff_s,
            backoff_max_s=s.endpoint_backoff_max_s,
        )

    @cached_property
    def fanin(self) -> Any:
        from chalicelib.adapters.glue import GlueCatalog
        from chalicelib.adapters.messaging import SnsTopic, SqsQueue
        from chalicelib.adapters.parquet import WranglerParquetWriter
        from chalicelib.adapters.s3 import S3ObjectStore
        from chalicelib.services.fanin import FanInService

        s = self.settings
        return FanInService(
            settings=s,
            store=S3ObjectStore(self.client("s3")),
            scorer=self.scorer,
            feedback=self.feedback_store,
            writer=WranglerParquetWriter(self.session),
            catalog=GlueCatalog(self.client("glue")),
            alerts=SnsTopic(self.client("sns"), s.alerts_topic_arn),
            review_queue=SqsQueue(self.client("sqs"), s.review_queue),
        )

    @cached_property
    def sagemaker(self) -> Any:
        from chalicelib.adapters.sagemaker import SageMakerGateway

        return SageMakerGateway(self.client("sagemaker"))

    @cached_property
    def rollout(self) -> Any:
        from chalicelib.services.rollout import EndpointRollout

        return EndpointRollout(self.settings, self.sagemaker, self.client("dynamodb"))

    @cached_property
    def registry(self) -> Any:
        from chalicelib.services.registry import ModelRegistry

        return ModelRegistry(self.settings, self.sagemaker, self.rollout)

    @cached_property
    def pipeline_steps(self) -> Any:
        from chalicelib.adapters.s3 import S3ObjectStore
        from chalicelib.services.pipeline import PipelineSteps

        return PipelineSteps(self.settings, S3ObjectStore(self.client("s3")), self.registry, self.rollout)

    @cached_property
    def pipeline_trigger(self) -> Any:
        from chalicelib.adapters.stepfunctions import StepFunctionsGateway
        from chalicelib.services.triggers import PipelineTrigger

        return PipelineTrigger(
            self.settings, StepFunctionsGateway(self.client("stepfunctions")), self.client("dynamodb")
        )

    @cached_property
    def watchdog(self) -> Any:
        from chalicelib.adapters.logs import LogReader
        from chalicelib.services.watchdog import TrainingWatchdog

        return TrainingWatchdog(
            self.settings, self.sagemaker, LogReader(self.client("logs")), self.client("sns")
        )


_container: Container | None = None


def get_container() -> Container:
    """The Lambda container's instance (one per cold start)."""
    global _container  # noqa: PLW0603
    if _container is None:
        _container = Container()
    return _container


def reset_container(container: Container | None = None) -> None:
    """Replace the cached container (tests, and the local cloud after a settings change)."""
    global _container  # noqa: PLW0603
    _container = container
