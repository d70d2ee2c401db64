"""The feedback fan-in: one SQS batch in; predictions, alerts, review requests and quarantine out.

Every entry point (``POST /feedback``, files under ``raw/feedback/<channel>/``, upstream systems
sending to the queue) puts one envelope (``chalicelib.domain.envelope``) on the feedback queue; the
fan-in Lambda reads it in batches of up to 10 and, for a batch:

1. parses each message: the envelope, then the channel payload (``parse_feedback``: PII masked,
   deterministic feedback ids). What cannot be parsed (not an envelope, unknown channel, broken MIME,
   too large ...) is written to ``quarantine/feedback/<channel>/<digest>.json`` with its reasons at
   once, and that message succeeds: a poison message is never retried.
2. skips feedback ids whose item in the feedback table is complete (a redelivery: nothing is done
   twice), reuses the stored prediction of an item a failed delivery left incomplete, and scores the
   rest in ONE ``InvokeEndpoint`` call (each instance carries its feedback id; the batch id is the
   ``InferenceId``); every new prediction is stored with a conditional put (first writer wins).
   When the model refuses the call with a client error (``ModelRejectedError``: 400 a record without
   review text, 413 a body over 6 MB, ...), retrying cannot help: the batch is split in halves and
   scored again until the refused records stand alone (a refusal of the request itself, 406 / 415,
   refuses every record at once), and each refused record is written to
   ``quarantine/feedback/<channel>/`` with its reason (``chalicelib.domain.model_rejection``); the
   good records of the batch are scored as usual.
3. writes the predictions not yet in the lake to ``curated/predictions/channel=/ingest_date=`` Parquet
   (Glue table ``predictions``), one file per partition named after its feedback ids.
4. alerts: an alerting negative (``chalicelib.domain.alerts.decide``) of a product is counted in the
   product's window (one atomic ADD per product and window in the batch); the count before and after
   makes the group ``single`` alerts, ONE ``burst`` alert, or ``suppressed``. Each feedback item
   claims its alert kind with a conditional write before anything is published, so a feedback id
   alerts at most once; the SNS message id is stored after publishing. Low-confidence predictions go
   to the review queue with text, prediction and probabilities, once (the SQS message id is stored).
5. marks each item complete.

Failure handling (the decision): the function reports partial batch failures. Chalice's
``on_sqs_message`` cannot say so itself, so ``app.SQS_FUNCTION_RESPONSE_TYPES`` names the fan-in and
the packaged template (and the local cloud's poller) give its event source mapping
``FunctionResponseTypes: ["ReportBatchItemFailures"]``. ``handle`` returns ``{"batchItemFailures":
[{"itemIdentifier": <SQS message id>}...]}`` listing exactly the messages with a record that could not
be finished: the endpoint still failing after the adapter's in-Lambda retries (throttling, 5xx, an
overloaded model, with exponential backoff and jitter), an unexpected answer, a store, topic or queue
error of ours (``ReviewSenseError``). Quarantined and duplicate messages, and messages whose records
all finished, are deleted. A listed message comes back after the visibility timeout; after the
queue's ``maxReceiveCount`` it moves to the fan-in DLQ (``<queue>-dlq``); its last error is kept in the
feedback table under ``error#<SQS message id>`` (expiring with the DLQ's retention) for the operator
who replays it. Redelivery is safe because every step above is idempotent by feedback id. Anything
else (AccessDenied, a bug) raises and fails the whole batch, which the same redrive handles.
So every input item ends up scored, quarantined or in the DLQ, and none is scored or alerted twice.
The windows left: a Lambda killed between publishing an alert and storing its message id sends that
alert again on redelivery, and one killed between writing a predictions file and recording it may
write the rows again in another file if the redelivered batch holds other records.

Why one module of about 720 lines: the five steps share one batch's state (``_Pending``) and its
failure bookkeeping, and read top to bottom in the order they run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from chalicelib.adapters.runtime import ModelRejectedError, Prediction
from chalicelib.adapters.s3 import ObjectNotFoundError, ObjectStore
from chalicelib.config import Settings
from chalicelib.domain.alerts import (
    AlertKind,
    AlertPolicy,
    Decision,
    alert_attributes,
    alert_kind,
    burst_window,
    decide,
)
from chalicelib.domain.envelope import (
    Envelope,
    EnvelopeError,
    QueueMessage,
    parse_envelope,
    utc_iso,
)
from chalicelib.domain.feedback import (
    FeedbackParse,
    FeedbackRecord,
    FeedbackRejection,
    RejectedFeedback,
    parse_feedback,
)
from chalicelib.domain.model_rejection import splitting_helps
from chalicelib.domain.pii import mask_pii
from chalicelib.domain.tables import PREDICTIONS
from chalicelib.errors import ReviewSenseError
from chalicelib.services.ingest import Catalog, ParquetWriter

logger = Logger(child=True)

#: How long a burst counter outlives its window, and a failed message's error record its message.
COUNTER_GRACE_S = 24 * 3600
ERROR_RECORD_TTL_S = 14 * 24 * 3600
#: Feedback ids added to a burst counter per UpdateItem (one condition clause each; 4 KB expression limit).
COUNT_CHUNK = 25
#: Characters of an unparsable body kept (PII-masked) in its quarantine record.
QUARANTINE_EXCERPT_CHARS = 2000


class Scorer(Protocol):
    def score(self, batch_id: str, instances: Sequence[Mapping[str, Any]]) -> list[Prediction]: ...


class FeedbackItems(Protocol):
    def get(self, feedback_id: str) -> dict[str, Any] | None: ...
    def get_many(self, feedback_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def put_prediction(self, item: Mapping[str, Any]) -> bool: ...
    def update(self, feedback_id: str, values: Mapping[str, Any]) -> None: ...
    def claim(self, feedback_id: str, attribute: str, value: Any) -> bool: ...
    def count_negatives(
        self, product_id: str, window: str, feedback_ids: Sequence[str], expires_at: int
    ) -> tuple[int, int] | None: ...
    def negatives_counted(self, product_id: str, window: str) -> int: ...
    def record_failure(self, message_id: str, values: Mapping[str, Any], expires_at: int) -> None: ...


class Topic(Protocol):
    def publish(
        self, subject: str, message: Mapping[str, Any], attributes: Mapping[str, Mapping[str, str]]
    ) -> str: ...


class Queue(Protocol):
    def send(self, message: Mapping[str, Any], attributes: Mapping[str, str] | None = None) -> str: ...


@dataclass
class FanInReport:
    messages: int = 0
    records: int = 0  # feedback items parsed into records (distinct feedback ids)
    scored: int = 0  # scored on the endpoint by this call
    duplicates: int = 0  # already complete: a redelivery
    resumed: int = 0  # scored by an earlier delivery that did not finish: finished now, not rescored
    quarantined: int = 0  # items kept out, with a reason
    alerts: int = 0  # single alerts published
    burst_alerts: int = 0
    suppressed: int = 0
    reviews: int = 0
    failed_messages: list[str] = field(default_factory=list)
    batch_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Pending:
    """A record in flight and the messages that carried it (the same feedback may come twice)."""

    record: FeedbackRecord
    message_ids: set[str]
    item: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    failed: bool = False


def batch_id_for(feedback_ids: Sequence[str]) -> str:
    """A deterministic batch id (a valid ``InferenceId``): the same records give the same id."""
    return "fanin-" + hashlib.sha256("\n".join(sorted(feedback_ids)).encode()).hexdigest()[:32]


def _excerpt(message_body: str) -> str:
    """The start of what was sent, PII masked; an inline payload is decoded first (none hides in base64)."""
    try:
        envelope = parse_envelope(message_body)
    except EnvelopeError:
        text = message_body
    else:
        text = envelope.body.decode("utf-8", "replace") if envelope.body is not None else message_body
    return mask_pii(text)[:QUARANTINE_EXCERPT_CHARS]


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class FanInService:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        scorer: Scorer,
        feedback: FeedbackItems,
        writer: ParquetWriter,
        catalog: Catalog,
        alerts: Topic,
        review_queue: Queue,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._store = store
        self._scorer = scorer
        self._feedback = feedback
        self._writer = writer
        self._catalog = catalog
        self._alerts = alerts
        self._review = review_queue
        self._clock = clock
        self.policy = AlertPolicy(
            alert_threshold=settings.alert_threshold,
            review_threshold=settings.review_threshold,
            high_threshold=settings.alert_high_threshold,
            burst_count=settings.burst_count,
            burst_window_s=settings.burst_window_s,
        )

    # -- the batch ---------------------------------------------------------------------------------

    def handle(self, messages: Sequence[QueueMessage]) -> dict[str, Any]:
        """Process one SQS batch; returns ``batchItemFailures`` (see the module docstring) and a report."""
        report = FanInReport(messages=len(messages))
        failed: dict[str, str] = {}
        pending: dict[str, _Pending] = {}
        for message in messages:
            try:
                parsed = self._parse(message)
                report.quarantined += self._quarantine(message, parsed)
            except ReviewSenseError as exc:
                failed[message.message_id] = f"{type(exc).__name__}: {exc}"
                continue
            for record in parsed.records:
                entry = pending.setdefault(record.feedback_id, _Pending(record, set()))
                entry.message_ids.add(message.message_id)
        report.records = len(pending)
        if pending:
            self._process(list(pending.values()), report, failed)
        for message in messages:
            if message.message_id in failed:
                self._remember_failure(message, failed[message.message_id])
        report.failed_messages = sorted(failed)
        logger.info("fanned in a batch", extra=report.as_dict())
        return {
            "batchItemFailures": [
                {"itemIdentifier": m.message_id} for m in messages if m.message_id in failed
            ],
            "report": report.as_dict(),
        }

    def _process(self, pending: list[_Pending], report: FanInReport, failed: dict[str, str]) -> None:
        def fail(entries: Sequence[_Pending], exc: Exception, step: str) -> None:
            for entry in entries:
                entry.failed = True
                for message_id in entry.message_ids:
                    failed.setdefault(message_id, f"{step}: {type(exc).__name__}: {exc}")

        try:
            stored = self._feedback.get_many([p.record.feedback_id for p in pending])
        except ReviewSenseError as exc:
            fail(pending, exc, "read")
            return
        todo, new = self._split_by_state(pending, stored, report)
        if new:
            report.batch_id = batch_id_for([p.record.feedback_id for p in new])
            try:
                refused = self._score(new, report)
            except ReviewSenseError as exc:
                logger.warning("scoring failed", extra={"batch_id": report.batch_id, "error": str(exc)})
                fail(new, exc, "score")
            else:
                todo.extend(p for p in new if p.record.feedback_id not in refused)
        for entry in todo:
            entry.decision = decide(entry.item["label"], entry.item["probabilities"], self.policy)
        try:
            self._write_predictions([p for p in todo if not p.item.get("parquet_key")])
        except ReviewSenseError as exc:
            fail(todo, exc, "lake")
            return
        self._alert(todo, report, fail)
        self._send_reviews(todo, report, fail)
        for entry in todo:
            if entry.failed:
                continue
            try:
                self._feedback.update(entry.record.feedback_id, {"completed_at": utc_iso(self._clock())})
            except ReviewSenseError as exc:
                fail([entry], exc, "complete")

    @staticmethod
    def _split_by_state(
        pending: list[_Pending], stored: Mapping[str, dict[str, Any]], report: FanInReport
    ) -> tuple[list[_Pending], list[_Pending]]:
        """(started by an earlier delivery, never seen); complete ones are counted as duplicates."""
        todo: list[_Pending] = []
        new: list[_Pending] = []
        for entry in pending:
            item = stored.get(entry.record.feedback_id)
            if item and item.get("completed_at"):
                report.duplicates += 1
            elif item:
                report.resumed += 1
                entry.item = item
                todo.append(entry)
            else:
                new.append(entry)
        return todo, new

    # -- parsing and quarantine ----------------------------------------------------------------------

    def _parse(self, message: QueueMessage) -> FeedbackParse:
        try:
            envelope = parse_envelope(message.body)
        except EnvelopeError as exc:
            return FeedbackParse(
                rejected=[
                    RejectedFeedback(
                        f"sqs:{message.message_id}", "", FeedbackRejection.UNPARSABLE, f"envelope: {exc}"
                    )
                ]
            )
        source = envelope.source(message.message_id)
        body, received_at, problem = self._payload(envelope, message)
        if body is None:
            return FeedbackParse(
                rejected=[RejectedFeedback(source, envelope.channel, FeedbackRejection.UNPARSABLE, problem)]
            )
        limit = self._s.max_object_bytes if envelope.pointer else self._s.max_message_bytes
        return parse_feedback(
            envelope.channel,
            body,
            source=source,
            received_at=received_at,
            salt=self._s.customer_ref_salt,
            max_bytes=limit,
        )

    def _payload(self, envelope: Envelope, message: QueueMessage) -> tuple[bytes | None, str, str]:
        """(body, received_at, problem): the payload of an inline message, or the pointed-at object."""
        received_at = envelope.received_at or message.sent_at or utc_iso(self._clock())
        if envelope.pointer is None:
            return envelope.body, received_at, ""
        pointer = envelope.pointer
        if pointer.bucket != self._s.lake_bucket or not pointer.key.startswith(self._s.feedback_raw_prefix):
            return None, received_at, "s3 pointer outside the lake's raw feedback zone"
        try:
            obj = self._store.open(pointer.bucket, pointer.key)
        except ObjectNotFoundError:
            return None, received_at, "the object no longer exists"
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in obj.chunks:  # stop one byte past the limit: the parser rejects it as too large
                chunks.append(chunk)
                size += len(chunk)
                if size > self._s.max_object_bytes:
                    break
        finally:
            obj.chunks.close()
        return b"".join(chunks), envelope.received_at or utc_iso(obj.last_modified), ""

    def _quarantine(self, message: QueueMessage, parsed: FeedbackParse) -> int:
        """One JSON object per message with every rejected item; keyed by source, so rewritten on retry."""
        if not parsed.rejected:
            return 0
        first = parsed.rejected[0]
        channel = first.channel if first.channel and first.channel.isalnum() else "unknown"
        digest = hashlib.sha256(first.source.encode()).hexdigest()[:24]
        key = f"{self._s.feedback_quarantine_prefix}{channel}/{digest}.json"
        self._store.put_json(
            self._s.lake_bucket,
            key,
            {
                "source": first.source,
                "channel": first.channel,
                "sqs_message_id": message.message_id,
                "sent_at": message.sent_at,
                "quarantined_at": utc_iso(self._clock()),
                "rejected": [r.to_dict() for r in parsed.rejected],
                "records_kept": len(parsed.records),
                "excerpt": _excerpt(message.body),
            },
        )
        logger.info(
            "quarantined feedback",
            extra={"key": key, "reasons": sorted({r.reason.value for r in parsed.rejected})},
        )
        return len(parsed.rejected)

    # -- scoring and the lake ------------------------------------------------------------------------

    def _score(self, new: list[_Pending], report: FanInReport) -> set[str]:
        """Score and store ``new``; the records the model refuses are quarantined: their feedback ids."""
        scored, refused = self._score_parts(new)
        scored_at = utc_iso(self._clock())
        for entry, batch_id, prediction in scored:
            item = {
                "id": entry.record.feedback_id,
                **entry.record.to_dict(),
                "batch_id": batch_id,
                "label": prediction.label,
                "score": prediction.score,
                "probabilities": prediction.probabilities,
                "variant": prediction.variant,
                "scored_at": scored_at,
            }
            if self._feedback.put_prediction(item):
                report.scored += 1
                entry.item = item
            else:  # another delivery stored it first: use its prediction, not ours
                entry.item = self._feedback.get(entry.record.feedback_id) or item
        for entry, rejected in refused:
            self._quarantine_refused(entry, rejected)
        report.quarantined += len(refused)
        return {entry.record.feedback_id for entry, _ in refused}

    def _score_parts(
        self, entries: list[_Pending]
    ) -> tuple[list[tuple[_Pending, str, Prediction]], list[tuple[_Pending, ModelRejectedError]]]:
        """(entry, batch id, prediction) of the records scored, (entry, refusal) of those the model refused.

        One call for all; a refused call whose records can be told apart is split in halves (each half a
        call of its own, its batch id the ``InferenceId``), down to the single records that are refused.
        """
        batch_id = batch_id_for([p.record.feedback_id for p in entries])
        instances = [
            {"feedback_id": p.record.feedback_id, "text": p.record.text, "title": p.record.title or ""}
            for p in entries
        ]
        try:
            predictions = self._scorer.score(batch_id, instances)
        except ModelRejectedError as exc:
            if len(entries) == 1 or not splitting_helps(exc.rejection):
                return [], [(entry, exc) for entry in entries]
            half = len(entries) // 2
            first, second = self._score_parts(entries[:half]), self._score_parts(entries[half:])
            return first[0] + second[0], first[1] + second[1]
        return [(e, batch_id, p) for e, p in zip(entries, predictions, strict=True)], []

    def _quarantine_refused(self, entry: _Pending, rejected: ModelRejectedError) -> None:
        """One object per refused record (keyed by its feedback id, so rewritten on redelivery), with the
        record as parsed (PII masked) so that it can be corrected and sent again."""
        record = entry.record
        channel = record.channel if record.channel.isalnum() else "unknown"
        digest = hashlib.sha256(f"model:{record.feedback_id}".encode()).hexdigest()[:24]
        key = f"{self._s.feedback_quarantine_prefix}{channel}/{digest}.json"
        detail = mask_pii(rejected.detail)[:QUARANTINE_EXCERPT_CHARS]
        self._store.put_json(
            self._s.lake_bucket,
            key,
            {
                "source": record.source,
                "channel": record.channel,
                "feedback_id": record.feedback_id,
                "sqs_message_ids": sorted(entry.message_ids),
                "quarantined_at": utc_iso(self._clock()),
                "rejected": [
                    {
                        "source": record.source,
                        "channel": record.channel,
                        "reason": rejected.rejection.value,
                        "detail": detail,
                    }
                ],
                "status": rejected.status,
                "record": record.to_dict(),
            },
        )
        logger.info(
            "quarantined feedback the model refused",
            extra={"key": key, "reason": rejected.rejection.value, "status": rejected.status},
        )

    def _write_predictions(self, entries: list[_Pending]) -> None:
        partitions: dict[tuple[str, str], list[_Pending]] = defaultdict(list)
        for entry in entries:
            day = _timestamp(str(entry.item["scored_at"])).strftime("%Y-%m-%d")
            partitions[(entry.record.channel, day)].append(entry)
        bucket, database = self._s.lake_bucket, self._s.glue_database
        for (channel, day), group in sorted(partitions.items()):
            name = hashlib.sha256(
                "\n".join(sorted(p.record.feedback_id for p in group)).encode()
            ).hexdigest()[:32]
            folder = f"{self._s.predictions_prefix}channel={channel}/ingest_date={day}/"
            key = f"{folder}{name}.parquet"
            self._writer.write(f"s3://{bucket}/{key}", PREDICTIONS, [self._row(p.item) for p in group])
            self._catalog.ensure_table(
                database,
                PREDICTIONS.name,
                f"s3://{bucket}/{self._s.predictions_prefix}",
                PREDICTIONS.columns,
                PREDICTIONS.partition_keys,
                PREDICTIONS.description,
            )
            self._catalog.ensure_partition(
                database, PREDICTIONS.name, [channel, day], f"s3://{bucket}/{folder}", PREDICTIONS.columns
            )
            for entry in group:
                self._feedback.update(entry.record.feedback_id, {"parquet_key": key})
                entry.item["parquet_key"] = key

    @staticmethod
    def _row(item: Mapping[str, Any]) -> dict[str, Any]:
        probabilities: Mapping[str, float] = item["probabilities"]
        return {
            "feedback_id": item["id"],
            "batch_id": item["batch_id"],
            "received_at": _timestamp(str(item["received_at"])),
            "scored_at": _timestamp(str(item["scored_at"])),
            "customer_ref": item.get("customer_ref"),
            "product_id": item.get("product_id"),
            "title": item.get("title"),
            "text": item["text"],
            "rating": item.get("rating"),
            "label": item["label"],
            "score": float(item["score"]),
            "p_negative": probabilities.get("negative"),
            "p_neutral": probabilities.get("neutral"),
            "p_positive": probabilities.get("positive"),
            "variant": item.get("variant"),
            "source": item["source"],
        }

    # -- alerts and human review ---------------------------------------------------------------------

    def _alert(
        self,
        todo: list[_Pending],
        report: FanInReport,
        fail: Callable[[Sequence[_Pending], Exception, str], None],
    ) -> None:
        alerting = [p for p in todo if p.decision and p.decision.alert and not p.failed]
        self._claim_alert_kinds([p for p in alerting if "alert" not in p.item], fail)
        unpublished = [
            p for p in alerting if not p.failed and p.item.get("alert") and not p.item.get("alert_message_id")
        ]
        bursts: dict[tuple[str, str], list[_Pending]] = defaultdict(list)
        for entry in unpublished:
            kind = AlertKind(entry.item["alert"])
            if kind is AlertKind.SUPPRESSED:
                report.suppressed += 1
            elif kind is AlertKind.BURST:
                bursts[(str(entry.record.product_id), self._window(entry))].append(entry)
            else:
                self._publish([entry], self._single_alert(entry), kind, report, fail)
        for (product_id, window), group in sorted(bursts.items()):
            self._publish(group, self._burst_alert(product_id, window, group), AlertKind.BURST, report, fail)

    def _window(self, entry: _Pending) -> str:
        return burst_window(entry.record.received_at, self.policy.burst_window_s)

    def _claim_alert_kinds(
        self, entries: list[_Pending], fail: Callable[[Sequence[_Pending], Exception, str], None]
    ) -> None:
        """Count each product's negatives per window (one ADD per group), then claim each item's kind."""
        groups: dict[tuple[str, str], list[_Pending]] = defaultdict(list)
        kinds: dict[str, AlertKind] = {}
        for entry in entries:
            if entry.record.product_id:
                groups[(entry.record.product_id, self._window(entry))].append(entry)
            else:
                kinds[entry.record.feedback_id] = AlertKind.SINGLE  # no product, no burst
        for (product_id, window), group in sorted(groups.items()):
            expires = int(_timestamp(window).timestamp()) + self.policy.burst_window_s + COUNTER_GRACE_S
            try:
                kinds.update(self._count(product_id, window, group, expires))
            except ReviewSenseError as exc:
                fail(group, exc, "count")
        for entry in entries:
            kind = kinds.get(entry.record.feedback_id)
            if kind is None or entry.failed:
                continue
            try:
                if self._feedback.claim(entry.record.feedback_id, "alert", kind.value):
                    entry.item["alert"] = kind.value
                else:  # another delivery claimed it: take what it decided
                    entry.item = self._feedback.get(entry.record.feedback_id) or entry.item
            except ReviewSenseError as exc:
                fail([entry], exc, "claim")

    def _count(
        self, product_id: str, window: str, group: list[_Pending], expires: int
    ) -> dict[str, AlertKind]:
        """Each negative's alert kind from the product's window count before and after adding it.

        Once the window has had its burst, later negatives are suppressed without being counted (the
        counter's id set stays small). Otherwise the group is added in chunks of ``COUNT_CHUNK`` (one
        condition clause per id); a chunk that makes the count reach ``burst_count`` is the burst.
        """
        if self._feedback.negatives_counted(product_id, window) >= self.policy.burst_count:
            return {p.record.feedback_id: AlertKind.SUPPRESSED for p in group}
        kinds: dict[str, AlertKind] = {}
        for start in range(0, len(group), COUNT_CHUNK):
            chunk = group[start : start + COUNT_CHUNK]
            counted = self._feedback.count_negatives(
                product_id, window, [p.record.feedback_id for p in chunk], expires
            )
            if counted is not None:
                kind = alert_kind(counted[0], counted[1], self.policy)
                kinds.update({p.record.feedback_id: kind for p in chunk})
                continue
            # Some were counted by an earlier delivery that stopped before claiming: one by one.
            for entry in chunk:
                alone = self._feedback.count_negatives(
                    product_id, window, [entry.record.feedback_id], expires
                )
                if alone is not None:
                    kinds[entry.record.feedback_id] = alert_kind(alone[0], alone[1], self.policy)
                else:
                    total = self._feedback.negatives_counted(product_id, window)
                    burst = total >= self.policy.burst_count
                    kinds[entry.record.feedback_id] = AlertKind.SUPPRESSED if burst else AlertKind.SINGLE
        return kinds

    def _publish(
        self,
        group: list[_Pending],
        message: dict[str, Any],
        kind: AlertKind,
        report: FanInReport,
        fail: Callable[[Sequence[_Pending], Exception, str], None],
    ) -> None:
        lead = group[-1]
        assert lead.decision is not None
        attributes = alert_attributes(lead.record, lead.decision, kind=kind)
        subject = f"ReviewSense: {'burst of negative' if kind is AlertKind.BURST else 'negative'} feedback"
        try:
            message_id = self._alerts.publish(subject, message, attributes)
            for entry in group:
                self._feedback.update(entry.record.feedback_id, {"alert_message_id": message_id})
                entry.item["alert_message_id"] = message_id
        except ReviewSenseError as exc:
            fail(group, exc, "alert")
            return
        if kind is AlertKind.BURST:
            report.burst_alerts += 1
        else:
            report.alerts += 1

    def _single_alert(self, entry: _Pending) -> dict[str, Any]:
        assert entry.decision is not None
        return {
            "kind": AlertKind.SINGLE.value,
            "severity": entry.decision.severity.value if entry.decision.severity else None,
            **self._summary(entry),
        }

    def _burst_alert(self, product_id: str, window: str, group: list[_Pending]) -> dict[str, Any]:
        return {
            "kind": AlertKind.BURST.value,
            "severity": "high",
            "product_id": product_id,
            "window_start": window,
            "window_s": self.policy.burst_window_s,
            "burst_count": self.policy.burst_count,
            "negatives": self._feedback.negatives_counted(product_id, window),
            "channels": sorted({p.record.channel for p in group}),
            "feedback": [self._summary(p) for p in group],
        }

    @staticmethod
    def _summary(entry: _Pending) -> dict[str, Any]:
        item, record = entry.item, entry.record
        return {
            "feedback_id": record.feedback_id,
            "channel": record.channel,
            "product_id": record.product_id,
            "received_at": record.received_at,
            "label": item["label"],
            "score": item["score"],
            "probabilities": item["probabilities"],
            "title": record.title,
            "text": record.text,
            "source": record.source,
        }

    def _send_reviews(
        self,
        todo: list[_Pending],
        report: FanInReport,
        fail: Callable[[Sequence[_Pending], Exception, str], None],
    ) -> None:
        for entry in todo:
            if entry.failed or not (entry.decision and entry.decision.to_review):
                continue
            if entry.item.get("review_message_id"):
                continue
            try:
                message_id = self._review.send(
                    {
                        **self._summary(entry),
                        "batch_id": entry.item.get("batch_id"),
                        "rating": entry.record.rating,
                    },
                    {"channel": entry.record.channel},
                )
                self._feedback.update(entry.record.feedback_id, {"review_message_id": message_id})
                entry.item["review_message_id"] = message_id
            except ReviewSenseError as exc:
                fail([entry], exc, "review")
                continue
            report.reviews += 1

    # -- failures ------------------------------------------------------------------------------------

    def _remember_failure(self, message: QueueMessage, error: str) -> None:
        """The last error of a message that will be retried (and may reach the DLQ), for the operator."""
        now = self._clock()
        try:
            self._feedback.record_failure(
                message.message_id,
                {"error": error, "receive_count": message.receive_count, "failed_at": utc_iso(now)},
                int((now + timedelta(seconds=ERROR_RECORD_TTL_S)).timestamp()),
            )
        except ReviewSenseError as exc:
            logger.warning(
                "could not record a failure", extra={"message_id": message.message_id, "error": str(exc)}
            )
