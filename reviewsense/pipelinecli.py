"""``reviewsense pipeline ...`` and ``reviewsense models ...``: run, watch and govern the training pipeline.

The commands only: they parse options, call the pipeline operations (``reviewsense.pipelineops``) or the
services the Lambdas use (``chalicelib``), pointed at the local cloud or an AWS stage, and print the result.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from chalicelib.container import Container
from reviewsense import pipelineops as ops
from reviewsense import target as targets
from reviewsense.console import print_table


def _container(args: argparse.Namespace) -> Container:
    return targets.resolve(stage=args.stage, profile=args.profile).container()


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
        return ops.exit_status(ops.wait_for(c, name, args.timeout))
    return 0 if result.get("started") else 1


def cmd_wait(args: argparse.Namespace) -> int:
    return ops.exit_status(ops.wait_for(_container(args), args.name, args.timeout))


def cmd_status(args: argparse.Namespace) -> int:
    c = _container(args)
    execution = ops.latest_execution(c, args.name)
    if args.json:
        print(json.dumps({**execution, "steps": ops.step_view(c, execution["executionArn"])}, default=str))
        return 0
    print(f"{execution['name']}: {execution['status']} (started {execution['startDate']})")
    print_table(["step", "status", "visits", "seconds", "error"], ops.step_view(c, execution["executionArn"]))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    rows = [
        [e["name"], e["status"], str(e["startDate"])[:19], str(e.get("stopDate", ""))[:19]]
        for e in ops.runs(_container(args))
    ]
    print_table(["execution", "status", "started", "stopped"], rows)
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
    registry, rollout = c.registry, c.rollout
    action = args.models_command
    if action == "list":
        keys = ["version", "status", "live", "macro_f1", "negative_recall", "run_id", "arn"]
        rows = [[m.get(k, "") for k in keys] for m in registry.list_models()]
        print_table(keys, rows)
        return 0
    if action == "show":
        result: Any = registry.show_model(args.arn)
    elif action == "approve":
        result = registry.set_approval(args.arn, "Approved", args.reason)
    elif action == "reject":
        result = registry.set_approval(args.arn, "Rejected", args.reason)
    elif action == "promote":
        result = rollout.promote()
    else:
        result = rollout.rollback()
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
