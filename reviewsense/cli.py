"""The ``reviewsense`` command: run the local cloud, feed the lake, query it, train and evaluate.

The argparse front end and the local, ingest, query and demo commands. Every command talks to the local
cloud by default and to AWS when given ``--stage``/``--profile``. The commands call helpers one layer
down (``console``, ``lake``, ``localcontrol``, ``pipelineops``, ``target``), which raise
``reviewsense.errors.OperatorError`` instead of exiting; ``main`` alone turns one into a message on
stderr and an exit status. Heavy modules (pandas, DuckDB, torch) are imported inside the commands that
need them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from reviewsense import feedbackcli, lake, localcontrol, pipelinecli
from reviewsense import target as targets
from reviewsense.console import json_default, print_table
from reviewsense.errors import OperatorError

#: The ``--help`` text (argparse joins its lines into one paragraph).
DESCRIPTION = """The ``reviewsense`` command: run the local cloud, feed the lake, query it, train and
evaluate. Every command talks to the local cloud by default and to AWS when given ``--stage``/``--profile``.
Heavy modules (pandas, DuckDB, torch) are imported inside the commands that need them.
"""
DEFAULT_DATA = Path("../shared/data/womens_clothing_ecommerce_reviews.csv.gz")


def _target(args: argparse.Namespace) -> targets.Target:
    return targets.resolve(stage=args.stage, profile=args.profile)


# -- local cloud -----------------------------------------------------------------------------------


def cmd_local_up(args: argparse.Namespace) -> int:
    from reviewsense.localcloud.server import LocalCloud, LocalCloudOptions

    home = targets.local_home()
    info = targets.running_local_cloud(home)
    if info:
        print(
            f"the local cloud is already running at {info['endpoint']} (pid {info['pid']})", file=sys.stderr
        )
        return 1
    cloud = LocalCloud(
        LocalCloudOptions(
            home=home, project_root=targets.project_root(), port=args.port, persist=not args.no_persist
        )
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    cloud.start()
    restored = f" (state restored: {', '.join(cloud.restored)})" if cloud.restored else ""
    print(f"ReviewSense local cloud listening on {cloud.endpoint}{restored}", flush=True)
    print(f"  state: {home}   functions: {', '.join(sorted(cloud.runtime.functions))}", flush=True)
    print("  Ctrl-C stops it.", flush=True)
    try:
        cloud.serve_forever()
    finally:
        print("stopping: saving state ...", file=sys.stderr, flush=True)
        cloud.stop()
    return 0


def cmd_local_status(args: argparse.Namespace) -> int:
    info = targets.running_local_cloud()
    status = {"running": info is not None, **(info or {}), "home": str(targets.local_home())}
    if args.json:
        print(json.dumps(status))
    elif info:
        print(f"running at {info['endpoint']} (pid {info['pid']}, since {info['started_at']})")
        print(f"state: {status['home']}")
        if info.get("api_url"):
            print(f"routes (API Gateway, IAM auth): {info['api_url']}")
    else:
        print("not running (start it with `reviewsense local up`)")
    return 0 if info else 3


def cmd_local_down(args: argparse.Namespace) -> int:
    print("stopped (state saved)" if localcontrol.stop() else "not running")
    return 0


# -- lake --------------------------------------------------------------------------------------------


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Ingest the raw objects whose current version has no manifest (a missed or failed event)."""
    report = _target(args).container().reconcile_service.reconcile(grace_seconds=args.grace_seconds)
    if args.json:
        print(json.dumps(report))
    else:
        counts = ["listed", "up_to_date", "recent", "ingested", "failed", "remaining"]
        print_table(counts, [[report[c] for c in counts]])
        for key in report["ingested_keys"]:
            print(f"ingested {key}")
        for failure in report["failures"]:
            print(f"failed {failure['key']}: {failure['error']}: {failure['detail']}", file=sys.stderr)
    return 1 if report["failed"] else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.reconcile:
        if args.paths:
            print("error: --reconcile takes no paths (it lists the raw zone itself)", file=sys.stderr)
            return 2
        return cmd_reconcile(args)
    if not args.paths:
        print("error: give files to upload, or --reconcile", file=sys.stderr)
        return 2
    tgt = _target(args)
    uploaded = _upload(tgt, args.paths, args.channel)
    if uploaded is None:
        return 2
    if not args.wait:
        return 0
    return _await_ingestion(tgt, uploaded, args.timeout)


def _upload(tgt: targets.Target, paths: list[str], channel: str) -> dict[str, str] | None:
    """Upload each file in turn (key -> ETag); None, after saying so, at the first path that is no file."""
    uploaded: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            print(f"error: {path} is not a file", file=sys.stderr)
            return None
        key, etag = lake.upload(tgt, path, channel)
        uploaded[key] = etag
        print(f"uploaded {path} -> s3://{tgt.settings.lake_bucket}/{key}")
    return uploaded


def _await_ingestion(tgt: targets.Target, uploaded: dict[str, str], timeout: float) -> int:
    """Print each uploaded object's ingestion report; 1 when one did not arrive within ``timeout``."""
    reports = lake.wait_for_ingestion(tgt, uploaded, timeout)
    rows = [
        (key, r.get("records"), r.get("curated"), r.get("quarantined"), json.dumps(r.get("reasons", {})))
        for key, r in reports.items()
    ]
    print_table(["source_key", "records", "curated", "quarantined", "reasons"], rows)
    missing = sorted(set(uploaded) - set(reports))
    if missing:
        print(f"error: not ingested within {timeout}s: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from reviewsense.lakequery import run_query

    result = run_query(_target(args), args.sql)
    if args.json:
        for record in result.records():
            print(json.dumps(record, default=json_default))
    else:
        print_table(result.columns, result.rows)
    return 0


# -- demo ----------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from reviewsense.demo import run_demo

    return run_demo(
        data=Path(args.data), port=args.port, timeout_s=args.timeout, with_pipeline=not args.ingest_only
    )


# -- model -----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from reviewsense.serve import serve

    serve(Path(args.model), host=args.host, port=args.port, variant=args.variant)
    return 0


def cmd_training(module: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        import importlib

        importlib.import_module(module).main(args.rest)
        return 0

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reviewsense", description=DESCRIPTION)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--stage",
        default=os.environ.get("REVIEWSENSE_TARGET_STAGE", "local"),
        help="deployment stage from .chalice/config.json (default: local = the local cloud)",
    )
    common.add_argument("--profile", default=None, help="AWS profile (implies a real AWS account)")
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the local cloud")
    local_sub = local.add_subparsers(dest="local_command", required=True)
    up = local_sub.add_parser("up", help="start the local cloud in the foreground (Ctrl-C stops it)")
    up.add_argument("--port", type=int, default=int(os.environ.get("REVIEWSENSE_PORT", targets.DEFAULT_PORT)))
    up.add_argument("--no-persist", action="store_true", help="keep state in memory only")
    up.set_defaults(func=cmd_local_up)
    st = local_sub.add_parser("status", help="is the local cloud running, and where")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_local_status)
    local_sub.add_parser("down", help="stop a running local cloud (its state is saved)").set_defaults(
        func=cmd_local_down
    )

    ing = sub.add_parser(
        "ingest", parents=[common], help="upload files into the lake's raw zone, or reconcile it"
    )
    ing.add_argument("paths", nargs="*")
    ing.add_argument(
        "--reconcile",
        action="store_true",
        help="ingest every raw object whose current version was never fully ingested (no upload)",
    )
    ing.add_argument(
        "--grace-seconds",
        type=float,
        default=0.0,
        help="with --reconcile: leave objects changed this recently to their own event (default 0)",
    )
    ing.add_argument("--json", action="store_true", help="with --reconcile: print the report as JSON")
    ing.add_argument("--channel", default="reviews", help="feedback channel (raw/<channel>/...)")
    ing.add_argument("--wait", action="store_true", help="wait for the ingest function and print its report")
    ing.add_argument("--timeout", type=float, default=300.0)
    ing.set_defaults(func=cmd_ingest)

    q = sub.add_parser(
        "query", parents=[common], help="SQL over the curated lake (Glue database reviewsense)"
    )
    q.add_argument("sql")
    q.add_argument("--json", action="store_true", help="one JSON object per row")
    q.set_defaults(func=cmd_query)

    demo = sub.add_parser("demo", help="start the local cloud if needed, ingest the dataset, summarise")
    demo.add_argument("--data", default=os.environ.get("REVIEWSENSE_DATA", str(DEFAULT_DATA)))
    demo.add_argument(
        "--port", type=int, default=int(os.environ.get("REVIEWSENSE_PORT", targets.DEFAULT_PORT))
    )
    demo.add_argument("--timeout", type=float, default=1800.0)
    demo.add_argument("--ingest-only", action="store_true", help="stop after ingestion (no training run)")
    demo.set_defaults(func=cmd_demo)

    pipelinecli.add_commands(sub, common)
    feedbackcli.add_commands(sub, common)
    srv = sub.add_parser("serve", help="serve one model artifact with the SageMaker runtime protocol (boto3)")
    srv.add_argument(
        "--model", required=True, help="a model directory or model.tar.gz (with code/inference.py)"
    )
    srv.add_argument("--port", type=int, default=8080, help="0 = any free port (default 8080)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument(
        "--variant", default="AllTraffic", help="the x-Amzn-Invoked-Production-Variant it reports"
    )
    srv.set_defaults(func=cmd_serve)
    sub.add_parser("evaluate", help="evaluate a model on labelled data (`reviewsense evaluate --help`)")
    sub.add_parser("train", help="train candidates, pick the best (`reviewsense train --help`)")
    return parser


TRAINING_COMMANDS = {"evaluate": "training.evaluate", "train": "training.automl"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TRAINING_COMMANDS:
        # The training scripts own their flags (they are also SageMaker entry points).
        return int(cmd_training(TRAINING_COMMANDS[argv[0]])(argparse.Namespace(rest=argv[1:])))
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except OperatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
