"""Queue and topic ports over SQS and SNS clients: send a JSON message, publish an alert.

The queue is known by name (what ``Settings`` holds and the template creates); its URL is looked
up once with ``GetQueueUrl``. Errors are translated by code: throttling and 5xx become
``DependencyUnavailableError``, a queue or topic that does not exist ``ResourceNotFoundError``
(SQS answers ``AWS.SimpleQueueService.NonExistentQueue`` through its query-compatible JSON protocol,
``QueueDoesNotExist`` in its JSON shape; SNS ``NotFound``); everything else, AccessDenied included, is
re-raised unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, error_message, translate
from chalicelib.errors import ResourceNotFoundError

QUEUE_NOT_FOUND_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def _translate(exc: ClientError) -> Exception:
    if error_code(exc) in QUEUE_NOT_FOUND_CODES:
        return ResourceNotFoundError(f"{error_code(exc)}: {error_message(exc)}")
    return translate(exc)


class SqsQueue:
    """Sends JSON messages to one queue."""

    def __init__(self, client: Any, queue_name: str) -> None:
        self._sqs = client
        self.name = queue_name
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            try:
                self._url = str(self._sqs.get_queue_url(QueueName=self.name)["QueueUrl"])
            except ClientError as exc:
                raise _translate(exc) from exc
        return self._url

    def send(self, message: Mapping[str, Any], attributes: Mapping[str, str] | None = None) -> str:
        """Send ``message`` as JSON; returns the SQS ``MessageId``."""
        request: dict[str, Any] = {
            "QueueUrl": self.url,
            "MessageBody": json.dumps(message, ensure_ascii=False, sort_keys=True),
        }
        if attributes:
            request["MessageAttributes"] = {
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            }
        try:
            return str(self._sqs.send_message(**request)["MessageId"])
        except ClientError as exc:
            raise _translate(exc) from exc


class SnsTopic:
    """Publishes JSON messages with ``MessageAttributes`` (what SNS filter policies match)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self.arn = topic_arn

    def publish(
        self, subject: str, message: Mapping[str, Any], attributes: Mapping[str, Mapping[str, str]]
    ) -> str:
        """Publish ``message`` as JSON with SNS-shaped ``attributes``; returns the SNS MessageId."""
        try:
            response = self._sns.publish(
                TopicArn=self.arn,
                Subject=subject[:100],
                Message=json.dumps(message, ensure_ascii=False, sort_keys=True),
                MessageAttributes={k: dict(v) for k, v in attributes.items()},
            )
        except ClientError as exc:
            raise translate(exc) from exc
        return str(response["MessageId"])
