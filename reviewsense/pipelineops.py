"""Pipeline operations behind ``reviewsense pipeline ...`` and ``make demo``: find, read and follow runs.

The training pipeline is a Step Functions state machine; these helpers read its executions and their
history (and the logs of the SageMaker job a run waits on) through the same ``Container`` the Lambdas
use, so they work on the local cloud and on an AWS stage alike.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from chalicelib.container import Container
from reviewsense.errors import NoPipelineRunError

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def _sfn(c: Container) -> Any:
    return c.client("stepfunctions")


def exit_status(status: str) -> int:
    """A command's exit status for a run that ended in ``status``: 0 succeeded, 1 failed, 2 still running."""
    if status not in TERMINAL:
        return 2
    return 0 if status == "SUCCEEDED" else 1


def latest_execution(c: Container, name: str | None) -> dict[str, Any]:
    arn = c.settings.pipeline_state_machine_arn
    if name:
        execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return dict(_sfn(c).describe_execution(executionArn=execution_arn))
    executions = _sfn(c).list_executions(stateMachineArn=arn, maxResults=100)["executions"]
    if not executions:
        raise NoPipelineRunError("no pipeline execution yet: start one with `reviewsense pipeline start`")
    newest = max(executions, key=lambda e: e["startDate"])
    return dict(_sfn(c).describe_execution(executionArn=newest["executionArn"]))


def execution_history(c: Container, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = _sfn(c).get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return events


def step_view(
    c: Container, execution_arn: str, events: list[dict[str, Any]] | None = None
) -> list[list[Any]]:
    """One row per state entered: status, start, duration, and the error of a failed step."""
    if events is None:
        events = execution_history(c, execution_arn)
    steps: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            name = entered["name"]
            if name not in steps:
                order.append(name)
            steps[name] = {
                "start": event["timestamp"],
                "status": "running",
                "visits": steps.get(name, {}).get("visits", 0) + 1,
            }
        elif exited and exited["name"] in steps:
            step = steps[exited["name"]]
            step["status"] = "done"
            step["seconds"] = (event["timestamp"] - step["start"]).total_seconds()
        elif event["type"].endswith("Failed") and order:
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            steps[order[-1]]["status"] = "failed"
            steps[order[-1]]["error"] = f"{details.get('error', '')}: {str(details.get('cause', ''))[:80]}"
    return [
        [name, s["status"], s["visits"], f"{s.get('seconds', 0):.1f}", s.get("error", "")]
        for name, s in ((n, steps[n]) for n in order)
    ]


#: SageMaker job kinds a run waits on: the task that creates one, its name parameter and its log group.
_JOB_TASKS = {
    "createTrainingJob": ("TrainingJobName", "/aws/sagemaker/TrainingJobs"),
    "createProcessingJob": ("ProcessingJobName", "/aws/sagemaker/ProcessingJobs"),
}
HEARTBEAT_S = 30.0


def current_job(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(job name, log group) of the last SageMaker job the run created, from its history."""
    for event in reversed(events):
        details = event.get("taskScheduledEventDetails") or {}
        for action, (key, group) in _JOB_TASKS.items():
            if details.get("resource", "").endswith(action):
                name = json.loads(details.get("parameters") or "{}").get(key)
                return (str(name), group) if name else None
    return None


def job_progress(c: Container, job: str, group: str) -> str:
    """The job's latest log line (what the script last printed), or '' before it has written one."""
    from botocore.exceptions import ClientError

    logs = c.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")["logStreams"]
        if not streams:
            return ""
        newest = max(streams, key=lambda st: st.get("lastEventTimestamp", 0))
        events = logs.get_log_events(
            logGroupName=group, logStreamName=newest["logStreamName"], limit=1, startFromHead=False
        )["events"]
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFoundException":  # no log group yet
            return ""
        raise
    return str(events[-1]["message"]).strip()[:160] if events else ""


def wait_for(c: Container, name: str | None, timeout_s: float) -> str:
    """Follow a run (default: the latest) and return its status: terminal, or still running after timeout_s.

    Prints each step the run enters and, every ``HEARTBEAT_S`` of a long step, the SageMaker job it waits on
    with that job's last log line; then the run's final status, or on stderr that it is still going.
    """
    deadline = time.monotonic() + timeout_s
    last = ""
    last_print = step_start = time.monotonic()
    while True:
        execution = latest_execution(c, name)
        events = execution_history(c, execution["executionArn"])
        rows = step_view(c, execution["executionArn"], events)
        current = rows[-1][0] if rows else ""
        now = time.monotonic()
        if current != last:
            print(f"{datetime.now(UTC):%H:%M:%S} {execution['name']}: {current}", flush=True)
            last, last_print, step_start = current, now, now
        elif execution["status"] == "RUNNING" and now - last_print >= HEARTBEAT_S:
            # Long steps (a training job polls for minutes) still say what is happening.
            job = current_job(events)
            progress = f" | {job[0]}: {job_progress(c, *job)}" if job else ""
            print(
                f"{datetime.now(UTC):%H:%M:%S} {execution['name']}: still in {current} "
                f"({now - step_start:.0f} s){progress}",
                flush=True,
            )
            last_print = now
        if execution["status"] in TERMINAL:
            print(f"{execution['name']}: {execution['status']}")
            return str(execution["status"])
        if time.monotonic() > deadline:
            print(f"still {execution['status']} after {timeout_s:.0f}s", file=sys.stderr)
            return str(execution["status"])
        time.sleep(2)


def runs(c: Container) -> list[dict[str, Any]]:
    """The pipeline's runs (the first page of up to 100 that Step Functions lists), newest first."""
    arn = c.settings.pipeline_state_machine_arn
    executions = _sfn(c).list_executions(stateMachineArn=arn, maxResults=100)
    return sorted(executions["executions"], key=lambda e: e["startDate"], reverse=True)
