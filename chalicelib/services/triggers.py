"""Starts the training pipeline: on demand, on a schedule, and when enough new labelled data arrived.

Execution names are deterministic (a manual name, the schedule's hour, or the n-th threshold crossing),
so a duplicate trigger finds its execution already there instead of starting a second run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, translate
from chalicelib.adapters.stepfunctions import StepFunctionsGateway
from chalicelib.config import Settings
from chalicelib.errors import AlreadyExistsError

NEW_DATA_COUNTER = "trigger#new-labelled-reviews"


class PipelineTrigger:
    def __init__(
        self,
        settings: Settings,
        stepfunctions: StepFunctionsGateway,
        dynamodb: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._s = settings
        self._sfn = stepfunctions
        self._ddb = dynamodb
        self._clock = clock

    def start(self, name: str, trigger: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start one execution named ``name``; an existing one with that name is reported, not duplicated."""
        payload = {"execution_name": name, "trigger": trigger, **(extra or {})}
        try:
            arn = self._sfn.start_execution(self._s.pipeline_state_machine_arn, name, payload)
        except AlreadyExistsError:
            return {"started": False, "execution_name": name, "reason": "already started"}
        return {"started": True, "execution_name": name, "execution_arn": arn}

    def on_schedule(self, event_time: str | None) -> dict[str, Any]:
        when = datetime.fromisoformat(event_time.replace("Z", "+00:00")) if event_time else self._clock()
        return self.start(f"schedule-{when:%Y%m%d-%H}", "schedule")

    def on_reviews_ingested(self, labelled: int) -> dict[str, Any]:
        """Count new labelled reviews; at the threshold, start a run and count again from zero."""
        if labelled <= 0:
            return {"started": False, "reason": "no labelled reviews"}
        item = self._ddb.update_item(
            TableName=self._s.pipeline_table,
            Key={"id": {"S": NEW_DATA_COUNTER}},
            UpdateExpression="ADD pending :n",
            ExpressionAttributeValues={":n": {"N": str(labelled)}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        pending = int(item["pending"]["N"])
        if pending < self._s.retrain_threshold:
            return {"started": False, "pending": pending, "threshold": self._s.retrain_threshold}
        try:  # claim this crossing exactly once, even when two ingestions race past the threshold
            claimed = self._ddb.update_item(
                TableName=self._s.pipeline_table,
                Key={"id": {"S": NEW_DATA_COUNTER}},
                UpdateExpression="SET pending = :zero ADD generation :one",
                ConditionExpression="pending >= :t",
                ExpressionAttributeValues={
                    ":t": {"N": str(self._s.retrain_threshold)},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return {"started": False, "reason": "another ingestion claimed this run"}
            raise translate(exc) from exc
        generation = int(claimed["generation"]["N"])
        return {**self.start(f"new-data-{generation:06d}", "new-data"), "pending": pending}
