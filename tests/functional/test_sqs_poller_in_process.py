"""Lambda's SQS poller stand-in also runs against in-process moto (``mock_aws``), for functional tests.

The recipe a functional test of an ``@app.on_sqs_message`` handler follows: provision the app, register
its handlers with a ``LocalLambdaRuntime``, turn moto's own delivery off (``sqspoller.install``) and
start a ``SqsPoller`` whose clients are the ``mock_aws`` session's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.app import Chalice, SQSEvent
from moto import mock_aws

from chalicelib.config import Settings
from reviewsense.localcloud import sqspoller
from reviewsense.localcloud.provision import Provisioner
from reviewsense.localcloud.runtime import FunctionSpec, LocalLambdaRuntime


@pytest.fixture
def poller_app() -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    app = Chalice(app_name="reviewsense")
    seen: list[dict[str, Any]] = []

    @app.on_sqs_message(queue="rs-functional-inbox", batch_size=10)
    def functional_inbox(event: SQSEvent) -> None:
        seen.append(event.to_dict())

    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        provisioner = Provisioner(session, Settings(), None, queue_visibility_timeout_s=1)  # type: ignore[arg-type]
        provisioned = provisioner.provision(app, None)
        runtime = LocalLambdaRuntime()
        for name, arn in provisioned.functions.items():
            runtime.register(FunctionSpec(provisioner.function_name(name), app.handler_map[name], arn))
        installed = sqspoller.install()
        poller = sqspoller.SqsPoller("us-east-1", runtime, session.client)
        poller.start()
        try:
            yield session, seen
        finally:
            poller.stop()
            runtime.shutdown()
            if installed:
                sqspoller.uninstall()


def test_messages_reach_the_handler_once_and_are_deleted(
    poller_app: tuple[Any, list[dict[str, Any]]],
) -> None:
    session, seen = poller_app
    sqs = session.client("sqs")
    url = sqs.get_queue_url(QueueName="rs-functional-inbox")["QueueUrl"]
    sent = {sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")["MessageId"] for i in range(15)}

    def in_queue() -> tuple[str, str]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]

    def delivered() -> list[str]:
        return sorted(r["messageId"] for e in list(seen) for r in e["Records"])

    deadline = time.monotonic() + 30
    while (set(delivered()) != sent or in_queue() != ("0", "0")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivered() == sorted(sent)  # each exactly once
    assert in_queue() == ("0", "0")  # and deleted
