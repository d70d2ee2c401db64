"""Functional tier: the real Chalice handlers against moto in-process (``mock_aws``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.config import Settings, get_settings
from chalicelib.container import Container, reset_container
from reviewsense.localcloud import extensions
from reviewsense.localcloud.provision import Provisioner
from reviewsense.localcloud.runtime import FunctionSpec, LocalLambdaRuntime


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def settings() -> Settings:
    return Settings(stage="local", idempotency_table="reviewsense-local-idempotency")


@pytest.fixture
def lake(aws: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Resources provisioned as the local cloud does, plus an SQS queue catching our domain events."""
    import app

    for key, value in {
        "REVIEWSENSE_STAGE": "local",
        "REVIEWSENSE_LAKE_BUCKET": settings.lake_bucket,
        "REVIEWSENSE_IDEMPOTENCY_TABLE": settings.idempotency_table,
    }.items():
        monkeypatch.setenv(key, value)
    provisioner = Provisioner(aws, settings, endpoint_url=None)  # type: ignore[arg-type]
    provisioned = provisioner.provision(app.app, None)
    # EventBridge rules target our Lambdas: run them in-process, as the local cloud does.
    runtime = LocalLambdaRuntime(retry_delays_s=(0.0, 0.0), inline=True)
    for name, arn in provisioned.functions.items():
        runtime.register(FunctionSpec(provisioner.function_name(name), app.app.handler_map[name], arn))
    extensions.install(runtime, lambda *args: None)
    sqs = aws.client("sqs")
    queue_url = sqs.create_queue(QueueName="domain-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = aws.client("events")
    events.put_rule(Name="capture", EventPattern='{"source": ["reviewsense.ingest"]}')
    events.put_targets(Rule="capture", Targets=[{"Id": "q", "Arn": queue_arn}])
    get_settings.cache_clear()
    reset_container(Container(settings, aws))
    yield aws
    runtime.drain(timeout_s=30)
    extensions.uninstall()
    reset_container()
    get_settings.cache_clear()
