"""``reviewsense pipeline ...`` and ``reviewsense models ...``: run, watch and govern the training pipeline.

The same services the Lambdas use (``chalicelib``), pointed at the local cloud or an AWS stage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from chalicelib.container import Container
from reviewsense import target as targets

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def _container(args: argparse.Namespace) -> Container:
    tgt = targets.resolve(stage=args.stage, profile=args.profile)
    return Container(tgt.settings, tgt.session)


def _sfn(c: Container) -> Any:
    return c.client("stepfunctions")


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    from reviewsense.cli import print_table

    print_table(columns, rows)


def latest_execution(c: Container, name: str | None) -> dict[str, Any]:
    arn = c.settings.pipeline_state_machine_arn
    if name:
        execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return dict(_sfn(c).describe_execution(executionArn=execution_arn))
    executions = _sfn(c).list_executions(stateMachineArn=arn, maxResults=100)["executions"]
    if not executions:
        raise SystemExit("no pipeline execution yet: start one with `reviewsense pipeline start`")
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


def cmd_start(args: argparse.Namespace) -> int:
    c = _container(args)
    extra: dict[str, Any] = {}
    for key in ("hyperparameters", "gate", "featurize"):
        value = getattr(args, key)
        if value:
            extra[key] = json.loads(value)
    name = args.name or f"manual-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    result = c.pipeline_trigger.start(name, "manual", extra)
    print(json.dumps(result, default=str))
    if args.wait and result.get("started"):
        return wait_for(c, name, args.timeout)
    return 0 if result.get("started") else 1


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


def wait_for(c: Container, name: str | None, timeout_s: float) -> int:
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
            return 0 if execution["status"] == "SUCCEEDED" else 1
        if time.monotonic() > deadline:
            print(f"still {execution['status']} after {timeout_s:.0f}s", file=sys.stderr)
            return 2
        time.sleep(2)


def cmd_wait(args: argparse.Namespace) -> int:
    return wait_for(_container(args), args.name, args.timeout)


def cmd_status(args: argparse.Namespace) -> int:
    c = _container(args)
    execution = latest_execution(c, args.name)
    if args.json:
        print(json.dumps({**execution, "steps": step_view(c, execution["executionArn"])}, default=str))
        return 0
    print(f"{execution['name']}: {execution['status']} (started {execution['startDate']})")
    _table(["step", "status", "visits", "seconds", "error"], step_view(c, execution["executionArn"]))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    c = _container(args)
    executions = _sfn(c).list_executions(
        stateMachineArn=c.settings.pipeline_state_machine_arn, maxResults=100
    )
    rows = [
        [e["name"], e["status"], str(e["startDate"])[:19], str(e.get("stopDate", ""))[:19]]
        for e in sorted(executions["executions"], key=lambda e: e["startDate"], reverse=True)
    ]
    _table(["execution", "status", "started", "stopped"], rows)
    return 0


def cmd_publish_code(args: argparse.Namespace) -> int:
    from reviewsense.codepublish import publish_code

    c = _container(args)
    result = publish_code(
        c.client("s3"), c.settings.lake_bucket, c.settings.code_prefix, targets.project_root()
    )
    print(json.dumps(result))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    c = _container(args)
    service = c.pipeline_service
    action = args.models_command
    if action == "list":
        keys = ["version", "status", "live", "macro_f1", "negative_recall", "run_id", "arn"]
        rows = [[m.get(k, "") for k in keys] for m in service.list_models()]
        _table(keys, rows)
        return 0
    if action == "show":
        result: Any = service.show_model(args.arn)
    elif action == "approve":
        result = service.set_approval(args.arn, "Approved", args.reason)
    elif action == "reject":
        result = service.set_approval(args.arn, "Rejected", args.reason)
    elif action == "promote":
        result = service.promote()
    else:
        result = service.rollback()
    print(json.dumps(result, indent=2, default=str))
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    pipeline = sub.add_parser("pipeline", help="start and watch the training pipeline")
    psub = pipeline.add_subparsers(dest="pipeline_command", required=True)
    start = psub.add_parser("start", parents=[common], help="start a run (deterministic name: no duplicates)")
    start.add_argument("--name", help="execution name (default manual-<timestamp>)")
    start.add_argument("--hyperparameters", help='JSON, e.g. \'{"epochs": "2"}\'')
    start.add_argument("--gate", help="JSON overrides of the gate, e.g. '{\"min_macro_f1\": 0.7}'")
    start.add_argument("--featurize", help="JSON options of the featurize step")
    start.add_argument("--wait", action="store_true")
    start.add_argument("--timeout", type=float, default=3600)
    start.set_defaults(func=cmd_start)
    for name, func, text in (
        ("status", cmd_status, "per-step status of a run (default: the latest)"),
        ("wait", cmd_wait, "wait for a run to finish"),
    ):
        p = psub.add_parser(name, parents=[common], help=text)
        p.add_argument("name", nargs="?")
        p.add_argument("--timeout", type=float, default=3600)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
    psub.add_parser("history", parents=[common], help="all runs").set_defaults(func=cmd_history)
    psub.add_parser(
        "publish-code", parents=[common], help="upload training/ for SageMaker jobs"
    ).set_defaults(func=cmd_publish_code)

    models = sub.add_parser("models", help="the model registry and the live endpoint")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", parents=[common], help="model packages, newest first").set_defaults(
        func=cmd_models
    )
    for name in ("show", "approve", "reject"):
        p = msub.add_parser(name, parents=[common], help=f"{name} a model package")
        p.add_argument("arn")
        p.add_argument("--reason", default="")
        p.set_defaults(func=cmd_models)
    msub.add_parser("promote", parents=[common], help="send all traffic to the challenger").set_defaults(
        func=cmd_models
    )
    msub.add_parser("rollback", parents=[common], help="restore the previous endpoint config").set_defaults(
        func=cmd_models
    )
