"""Pipeline operations behind ``reviewsense pipeline ...`` and ``make demo``: find, read and follow runs.

The training pipeline is a Step Functions state machine; these helpers read its executions and their
history (and the logs of the SageMaker job a run waits on) through the same ``Container`` the Lambdas
use, so they work on the local cloud and on an AWS stage alike. While a run trains, ``wait_for`` prints
the training job's progress (``reviewsense.trainprogress``) from its CloudWatch Logs.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code
from chalicelib.adapters.logs import LogReader
from chalicelib.container import Container
from chalicelib.errors import DependencyUnavailableError, ResourceNotFoundError
from reviewsense.errors import NoPipelineRunError
from reviewsense.trainprogress import ProgressPrinter, ProgressTracker, budget_seconds

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
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_JOB_TASKS = {
    "createTrainingJob": ("TrainingJobName", TRAINING_LOG_GROUP),
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


def training_job(events: list[dict[str, Any]]) -> str | None:
    """The name of the last training job the run created, from its history (None before it creates one)."""
    for event in reversed(events):
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resource", "").endswith("createTrainingJob"):
            name = json.loads(details.get("parameters") or "{}").get("TrainingJobName")
            return str(name) if name else None
    return None


#: How often a waiting command reads the training job's new log events, and the most often it prints a
#: training-progress line (an evaluation's result and the end of training are printed when they come).
LOG_POLL_S = 5.0
PROGRESS_EVERY_S = 12.0
_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})


class TrainingProgressFollower:
    """Reads the training job of a run from CloudWatch Logs as it runs, and says what to print.

    The job's log stream (``/aws/sagemaker/TrainingJobs``, ``<job>/algo-1-...``) is read incrementally
    with GetLogEvents tokens; its wall-clock budget comes from DescribeTrainingJob's hyperparameters.
    Logs that are not there yet (the job has not started, or CloudWatch has not shown them yet) and
    throttling just mean nothing to print this time; a caller without permission to read them is told
    once on stderr and waits without progress.
    """

    def __init__(self, c: Container, poll_s: float = LOG_POLL_S, every_s: float = PROGRESS_EVERY_S) -> None:
        self._c = c
        self._reader = LogReader(c.client("logs"))
        self.poll_s, self.every_s = poll_s, every_s
        self.job: str | None = None
        self._cursor: dict[str, str] = {}
        self._printer: ProgressPrinter | None = None
        self._last_poll: float | None = None
        self.unavailable = ""

    def poll(self, events: list[dict[str, Any]], now: float, final: bool = False) -> list[str]:
        """Progress lines to print now for the run whose history is ``events``; ``final``: the run ended,
        read what is left and print what is pending."""
        job = training_job(events)
        if job is None or self.unavailable:
            return []
        if (
            not final
            and job == self.job
            and self._last_poll is not None
            and now - self._last_poll < self.poll_s
        ):
            return []
        self._last_poll = now
        out: list[str] = []
        if job != self.job:
            if self.job is not None:  # a new training job (a retry): the rest of the previous one first
                out += self._read(now, final=True)
            self.job, self._cursor, self._printer = job, {}, None
        return out + self._read(now, final)

    def _read(self, now: float, final: bool) -> list[str]:
        assert self.job is not None
        try:
            if self._printer is None:  # the budget is known once the job exists; its logs cannot exist before
                described = self._c.sagemaker.describe_training_job(self.job)
                tracker = ProgressTracker(budget_seconds(described.get("HyperParameters")))
                self._printer = ProgressPrinter(tracker, self.every_s)
            new = self._reader.new_events(TRAINING_LOG_GROUP, f"{self.job}/", self._cursor)
        except (ResourceNotFoundError, DependencyUnavailableError):
            return []
        except ClientError as err:
            if error_code(err) not in _ACCESS_DENIED:
                raise
            self.unavailable = f"{error_code(err)}: {err}"
            print(f"training progress unavailable (cannot read the job or its logs): {err}", file=sys.stderr)
            return []
        return self._printer.lines(((e.message, e.timestamp_ms) for e in new), now, final=final)


def wait_for(c: Container, name: str | None, timeout_s: float) -> str:
    """Follow a run (default: the latest) and return its status: terminal, or still running after timeout_s.

    Prints each step the run enters; while it trains, the training job's progress (step / total, loss,
    samples/s, ETA, each evaluation's validation macro-F1) at most every ``PROGRESS_EVERY_S``; and, after
    ``HEARTBEAT_S`` of a step with nothing else printed, the SageMaker job it waits on with that job's last
    log line. Then the run's final status, or on stderr that it is still going.
    """
    deadline = time.monotonic() + timeout_s
    last = ""
    last_print = step_start = time.monotonic()
    follower = TrainingProgressFollower(c)
    while True:
        execution = latest_execution(c, name)
        events = execution_history(c, execution["executionArn"])
        rows = step_view(c, execution["executionArn"], events)
        current = rows[-1][0] if rows else ""
        now = time.monotonic()
        if current != last:
            print(f"{datetime.now(UTC):%H:%M:%S} {execution['name']}: {current}", flush=True)
            last, last_print, step_start = current, now, now
        progress_lines = follower.poll(events, now, final=execution["status"] in TERMINAL)
        for line in progress_lines:
            print(f"{datetime.now(UTC):%H:%M:%S} {execution['name']}: {line}", flush=True)
            last_print = now
        if execution["status"] == "RUNNING" and now - last_print >= HEARTBEAT_S:
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
