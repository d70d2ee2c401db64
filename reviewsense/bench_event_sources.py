"""Event-source latency on the local cloud: how long a message or a signed request takes to reach a handler.

1. ``sqs``: ``SendMessage`` -> Lambda's SQS poller stand-in -> the ``on_sqs_message`` handler, per message
   (messages sent one every ``--interval-ms``, each timed from just before ``SendMessage`` to the
   handler's first line; both clocks are this process's).
2. ``http``: a SigV4-signed ``POST`` through the local API Gateway -> the IAM-authorised route -> the
   answer back (sequential round trips, ``reviewsense.signedhttp.post_json``).

The app is this module's own two-handler Chalice app, so the numbers are the local cloud's overhead
alone, not any handler's work. Run with ``python -m reviewsense.bench_event_sources [--messages 200]``;
prints a Markdown table (p50 / p95 / max in milliseconds).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalice.app import Chalice, IAMAuthorizer, SQSEvent

from reviewsense.errors import OperatorError

MODULE = "reviewsense.bench_event_sources"
QUEUE = "rs-bench-latency"

app = Chalice(app_name="reviewsense")
ARRIVED: dict[str, float] = {}
_lock = threading.Lock()


@app.on_sqs_message(queue=QUEUE, batch_size=10)
def bench_inbox(event: SQSEvent) -> None:
    now = time.perf_counter()
    with _lock:
        for record in event:
            ARRIVED.setdefault(record.body, now)


@app.route("/echo", methods=["POST"], authorizer=IAMAuthorizer())
def bench_echo() -> dict[str, Any]:
    request = app.current_request
    return {"ok": request is not None}


def _percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
    return statistics.median(ms), p95, ms[-1]


def bench_sqs(cloud: Any, module: Any, messages: int, interval_s: float) -> list[float]:
    from reviewsense.target import local_client

    sqs = local_client(cloud.endpoint, "sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sent: dict[str, float] = {}
    for i in range(messages):
        body = f"m{i}"
        sent[body] = time.perf_counter()
        sqs.send_message(QueueUrl=url, MessageBody=body)
        time.sleep(interval_s)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with module._lock:
            if len(module.ARRIVED) >= messages:
                break
        time.sleep(0.05)
    with module._lock:
        arrived = dict(module.ARRIVED)
    missing = set(sent) - set(arrived)
    if missing:
        raise OperatorError(f"{len(missing)} messages never reached the handler")
    return [arrived[body] - sent[body] for body in sent]


def bench_http(cloud: Any, requests: int) -> list[float]:
    import boto3

    from reviewsense.signedhttp import post_json

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.options.region
    )
    url = f"{cloud.endpoint}{cloud.gateway.base_path}/echo"
    samples: list[float] = []
    for i in range(requests):
        started = time.perf_counter()
        status, answer = post_json(url, {"i": i}, session, cloud.options.region)
        samples.append(time.perf_counter() - started)
        if status != 200:
            raise OperatorError(f"request {i}: {status} {answer}")
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    from reviewsense.localcloud.server import LocalCloud, LocalCloudOptions
    from reviewsense.target import free_port, project_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="messages sent, and signed requests made")
    parser.add_argument("--interval-ms", type=float, default=20.0, help="pause between two messages")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as home:
        cloud = LocalCloud(
            LocalCloudOptions(
                home=Path(home),
                project_root=project_root(),
                port=free_port(),
                persist=False,
                app_module=MODULE,
                state_machines=False,
            )
        )
        cloud.start()
        try:
            module = importlib.import_module(MODULE)  # the copy the local cloud runs (not ``__main__``)
            rows = [
                (
                    "sqs: SendMessage -> handler",
                    bench_sqs(cloud, module, args.messages, args.interval_ms / 1000),
                ),
                ("http: signed POST round trip", bench_http(cloud, args.messages)),
            ]
        finally:
            cloud.stop()
    print("| path | n | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in rows:
        p50, p95, worst = _percentiles(samples)
        print(f"| {name} | {len(samples)} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
