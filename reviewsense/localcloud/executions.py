"""Step Functions executions as data, so they and their history survive a local-cloud restart.

With ``execute_state_machine`` on, moto keeps state machines and executions in its ASL interpreter's
backend (``stepfunctions_parser_backends``), not in the ``stepfunctions`` backend, and every execution
holds a live worker (threads, locks, the interpreter's environment) that cannot be pickled. This module
gives ``pickle`` a reduction for executions: what DescribeExecution, ListExecutions and
GetExecutionHistory answer (status, dates, input, output, error, cause and the history events) is saved,
and comes back as a ``RestoredExecution`` that answers those calls from the saved data.

An execution saved while RUNNING was cut off by the stop of the local cloud: its worker is gone and
nothing resumes it, so it is restored as ABORTED, with error ``LocalCloud.Stopped``, a cause saying so,
and a closing ``ExecutionAborted`` history event (AWS's own shape for a stopped execution). A new run
must be started for the work to be done (under a new name, as on AWS).
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from moto.stepfunctions.parser.api import ExecutionStatus, GetExecutionHistoryOutput, HistoryEventList
from moto.stepfunctions.parser.backend.execution import Execution

STOPPED_ERROR = "LocalCloud.Stopped"
STOPPED_CAUSE = (
    "The local cloud stopped while this execution was running; executions are not resumed after a "
    "restart. Start a new execution."
)

_SAVED = (
    "name",
    "sm_type",
    "role_arn",
    "exec_arn",
    "account_id",
    "region_name",
    "state_machine_arn",
    "start_date",
    "execution_input",
    "input_data",
    "input_details",
    "trace_header",
    "exec_status",
    "stop_date",
    "output",
    "output_details",
    "error",
    "cause",
)


class RestoredExecution(Execution):
    """An execution read back from disk: it answers describe/list/history, and never runs again."""

    events: list[dict[str, Any]]

    def to_history_output(self) -> GetExecutionHistoryOutput:
        return GetExecutionHistoryOutput(events=cast("HistoryEventList", list(self.events)))

    def start(self) -> None:
        raise RuntimeError("a restored execution cannot be started again")

    def stop(self, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
        """Nothing runs any more: StopExecution on it changes nothing."""


def _history(execution: Execution) -> list[dict[str, Any]]:
    if isinstance(execution, RestoredExecution):
        return list(execution.events)
    worker = execution.exec_worker
    env = getattr(worker, "env", None)
    if env is None:
        return []
    return [dict(event) for event in env.event_manager.get_event_history()]


def reduce_execution(execution: Execution) -> tuple[Any, tuple[dict[str, Any]]]:
    """``copyreg`` reduction: the execution's data, without its worker."""
    state = {name: getattr(execution, name, None) for name in _SAVED}
    state["history"] = _history(execution)
    return restore_execution, (state,)


def restore_execution(state: dict[str, Any]) -> RestoredExecution:
    execution = RestoredExecution.__new__(RestoredExecution)
    history = list(state.pop("history", []))
    for name, value in state.items():
        setattr(execution, name, value)
    execution.execution_arn = execution.exec_arn
    execution.state_machine = None  # type: ignore[assignment]
    execution.exec_worker = None
    execution._cloud_watch_logging_session = None
    execution._activity_store = {}
    execution.events = history
    if execution.exec_status == ExecutionStatus.RUNNING:
        _mark_stopped(execution)
    return execution


def _mark_stopped(execution: RestoredExecution) -> None:
    now = datetime.datetime.now(tz=datetime.UTC)
    last_id = max((int(e.get("id", 0)) for e in execution.events), default=0)
    execution.events.append(
        {
            "timestamp": now,
            "type": "ExecutionAborted",
            "id": last_id + 1,
            "previousEventId": last_id,
            "executionAbortedEventDetails": {"error": STOPPED_ERROR, "cause": STOPPED_CAUSE},
        }
    )
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = now
    execution.error = STOPPED_ERROR
    execution.cause = STOPPED_CAUSE
