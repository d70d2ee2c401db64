"""Local stand-in for Lambda's SQS poller: event source mappings delivered as AWS delivers them.

moto stores ``CreateEventSourceMapping`` but its own SQS delivery is nothing like Lambda's: it runs
the function inside ``SendMessage`` (one message at a time, with a fixed fake ``SentTimestamp`` and
``ApproximateReceiveCount``), deletes on success and makes failed messages visible again at once,
so a failing message is retried in a tight loop and the redrive policy never sees it honestly.
This module turns that off (``install`` patches ``Queue.add_message`` to only enqueue, exactly
moto 5.2.5's code without the delivery loop) and runs the poller instead:

* ``SqsPoller`` lists the event source mappings through the Lambda API, like the Lambda service
  does, and runs one worker per enabled SQS mapping whose function the local runtime knows
  (mappings created, disabled or deleted later are picked up within ``refresh_s``).
* A worker long-polls its queue with ``ReceiveMessage`` (``WaitTimeSeconds``, at most 10 messages a
  call, more calls to fill ``BatchSize`` within ``MaximumBatchingWindowInSeconds``, every system
  attribute and message attribute), builds the event Lambda delivers (``sqs_event``) and invokes
  the function synchronously through ``runtime.py``: no asynchronous retries, the queue's
  redelivery is the retry.
* On success the batch is deleted. On a function error nothing is deleted: the messages reappear
  after the queue's visibility timeout, and once a message has been received ``maxReceiveCount``
  times the next receive moves it to the dead-letter queue of the queue's redrive policy (moto
  implements this redrive in ``ReceiveMessage`` exactly as SQS does; the poller relies on it).
* With ``FunctionResponseTypes: ["ReportBatchItemFailures"]`` the function's
  ``{"batchItemFailures": [{"itemIdentifier": messageId}]}`` keeps only those messages; an empty
  or missing list deletes all; a malformed answer (an identifier that is missing, empty or not
  in the batch) fails the whole batch, as Lambda documents.

All requests go through the moto server over HTTP, so they are validated as every other request.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reviewsense.localcloud.patching import Patches
from reviewsense.localcloud.runtime import FunctionError, LocalLambdaRuntime

logger = logging.getLogger(__name__)

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
MAX_MESSAGES_PER_RECEIVE = 10  # SQS's limit for one ReceiveMessage

_patches = Patches()


# -- moto's own delivery, off ----------------------------------------------------------------------


def install() -> bool:
    """Stop moto delivering SQS messages to Lambda inside ``SendMessage``; True when it patched now."""
    return _patches.install(_apply)


def uninstall() -> bool:
    return _patches.uninstall()


def _apply(patches: Patches) -> None:
    from moto.sqs import models as sqs_models

    def add_message(self: Any, message: Any) -> None:
        # moto 5.2.5's Queue.add_message up to (not including) its event-source-mapping loop.
        if self.fifo_queue and (
            self.attributes.get("ContentBasedDeduplication") == "true" or message.deduplication_id
        ):
            for m in self._messages:
                if m.deduplication_id == message.deduplication_id:
                    diff = message.sent_timestamp - m.sent_timestamp
                    if diff / 1000 < sqs_models.DEDUPLICATION_TIME_IN_SECONDS:
                        return
        with self._messages_lock:
            self._messages.append(message)
            self._messages_lock.notify_all()

    patches.replace(sqs_models.Queue, "add_message", add_message)


# -- the event Lambda delivers ---------------------------------------------------------------------


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    def b64(data: Any) -> str:
        return base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()

    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [b64(v) for v in value.get("BinaryListValues", [])]
    out["dataType"] = value["DataType"]
    return out


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records`` entry of Lambda's SQS event, from a ``ReceiveMessage`` message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [sqs_record(m, queue_arn, region) for m in messages]}


def failed_items(result: Any, message_ids: list[str]) -> set[str] | None:
    """The message ids a ``ReportBatchItemFailures`` response keeps; None: the whole batch failed.

    Lambda's rules: a null or empty response, or a null or empty ``batchItemFailures``, is complete
    success; an identifier that is missing, null, empty or not in the batch fails the whole batch.
    """
    if result is None or result == {}:
        return set()
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    kept: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        kept.add(identifier)
    return kept


# -- the poller ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqsMapping:
    """The part of an event source mapping's configuration that decides delivery."""

    uuid: str
    function_arn: str
    queue_arn: str
    batch_size: int
    window_s: float
    report_item_failures: bool

    @classmethod
    def from_api(cls, esm: dict[str, Any]) -> SqsMapping:
        return cls(
            uuid=str(esm["UUID"]),
            function_arn=str(esm["FunctionArn"]),
            queue_arn=str(esm["EventSourceArn"]),
            batch_size=int(esm.get("BatchSize") or 10),
            window_s=float(esm.get("MaximumBatchingWindowInSeconds") or 0),
            report_item_failures=REPORT_BATCH_ITEM_FAILURES in (esm.get("FunctionResponseTypes") or []),
        )


class SqsPoller:
    """Runs every enabled SQS event source mapping of the local cloud's Lambda (one worker each)."""

    def __init__(
        self,
        region: str,
        runtime: LocalLambdaRuntime,
        client_factory: Callable[[str], Any],
        *,
        wait_s: int = 1,
        refresh_s: float = 1.0,
    ) -> None:
        """``client_factory(service)`` returns a new boto3 client for the local cloud (one per worker).

        Only the clients know where the APIs are: the same poller runs against the local cloud's server
        or an in-process ``mock_aws``.
        """
        self._region = region
        self._runtime = runtime
        self._client = client_factory
        self._wait_s = wait_s
        self._refresh_s = refresh_s
        self._stop = threading.Event()
        self._workers: dict[str, tuple[SqsMapping, threading.Event, threading.Thread]] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._manage, name="sqs-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._wait_s + 30)
        for _, stop, thread in list(self._workers.values()):
            stop.set()
            thread.join(timeout=self._wait_s + 30)
        self._workers.clear()

    @property
    def mappings(self) -> list[SqsMapping]:
        return [m for m, _, _ in self._workers.values()]

    def refresh(self) -> None:
        """Start a worker per new or changed enabled SQS mapping; stop those gone, disabled or changed."""
        wanted: dict[str, SqsMapping] = {}
        pages = self._client("lambda").get_paginator("list_event_source_mappings").paginate()
        for page in pages:
            for esm in page["EventSourceMappings"]:
                arn = str(esm.get("EventSourceArn", ""))
                if arn.split(":")[2:3] != ["sqs"] or esm.get("State") != "Enabled":
                    continue
                if self._runtime.knows(str(esm["FunctionArn"])):
                    wanted[str(esm["UUID"])] = SqsMapping.from_api(esm)
        for uuid, (mapping, stop, _) in list(self._workers.items()):
            if wanted.get(uuid) != mapping:
                stop.set()
                del self._workers[uuid]
        for uuid, mapping in wanted.items():
            if uuid not in self._workers:
                stop = threading.Event()
                thread = threading.Thread(
                    target=self._work, args=(mapping, stop), name=f"sqs-esm-{uuid[:8]}", daemon=True
                )
                self._workers[uuid] = (mapping, stop, thread)
                thread.start()

    # -- internals ---------------------------------------------------------------------------------

    def _manage(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:  # the server is going away, or one bad listing: try again next round
                logger.exception("listing event source mappings failed")

    def _work(self, mapping: SqsMapping, stop: threading.Event) -> None:
        sqs = self._client("sqs")
        _, _, _, _, account, name = mapping.queue_arn.split(":", 5)
        queue_url = str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
        while not (stop.is_set() or self._stop.is_set()):
            try:
                messages = self._receive_batch(sqs, queue_url, mapping, stop)
                if messages:
                    self._deliver(sqs, queue_url, mapping, messages)
            except Exception:
                logger.exception("polling %s for %s failed", mapping.queue_arn, mapping.function_arn)
                stop.wait(1.0)

    def _receive(self, sqs: Any, queue_url: str, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(count, MAX_MESSAGES_PER_RECEIVE),
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _receive_batch(
        self, sqs: Any, queue_url: str, mapping: SqsMapping, stop: threading.Event
    ) -> list[dict[str, Any]]:
        """Up to ``BatchSize`` messages: the first long poll, then more until the window closes.

        A window longer than the visibility timeout can receive a message again: it is delivered once,
        with its latest receipt handle and receive count (only that handle surely deletes it).
        """
        first = self._receive(sqs, queue_url, mapping.batch_size, self._wait_s)
        batch = {str(m["MessageId"]): m for m in first}
        if not batch or mapping.window_s <= 0:
            return list(batch.values())
        closes = time.monotonic() + mapping.window_s
        while len(batch) < mapping.batch_size and not stop.is_set():
            left = closes - time.monotonic()
            if left <= 0:
                break
            more = self._receive(sqs, queue_url, mapping.batch_size - len(batch), min(int(left), 1))
            batch.update((str(m["MessageId"]), m) for m in more)
            if not more and left < 1:
                stop.wait(min(left, 0.05))
        return list(batch.values())

    def _deliver(self, sqs: Any, queue_url: str, mapping: SqsMapping, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, mapping.queue_arn, self._region)
        try:
            result = self._runtime.invoke(mapping.function_arn, event)
        except FunctionError:
            return  # the whole batch becomes visible again after the visibility timeout
        ids = [str(m["MessageId"]) for m in messages]
        keep = failed_items(result, ids) if mapping.report_item_failures else set()
        if keep is None:
            return
        done = [m for m in messages if m["MessageId"] not in keep]
        for start in range(0, len(done), MAX_MESSAGES_PER_RECEIVE):
            chunk = done[start : start + MAX_MESSAGES_PER_RECEIVE]
            response = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                logger.warning("could not delete a message from %s: %s", queue_url, failure)
