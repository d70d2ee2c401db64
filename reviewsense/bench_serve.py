"""One-review latency through boto3 ``invoke_endpoint`` against ``reviewsense serve``.

Starts ``reviewsense serve`` as its own process (as users run it) on a model artifact (by default the
tiny TF-IDF + logistic regression of ``reviewsense.localmodel`` around ``training/inference.py``),
then sends one real review per request from the shared dataset (cycling through the first
``--reviews``), sequentially, with an unmodified boto3 ``sagemaker-runtime`` client, and the same
requests as plain HTTP on one keep-alive connection (what the client adds on top). Prints a Markdown
table of p50 / p90 / p99 / mean in milliseconds.

Run with ``make bench-serve`` (``MODEL=path/to/model.tar.gz`` to measure another artifact).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from reviewsense.localmodel import model_archive
from reviewsense.target import free_port, project_root

DATASET = Path("../shared/data/womens_clothing_ecommerce_reviews.csv.gz")


def real_reviews(path: Path, count: int) -> list[str]:
    """The first ``count`` non-empty review texts of the Kaggle CSV."""
    texts: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = (row.get("Review Text") or "").strip()
            if text:
                texts.append(text)
            if len(texts) == count:
                break
    return texts


def start(model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "reviewsense.cli", "serve", "--model", str(model), "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=project_root(), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"reviewsense serve did not start; see {log}")


def timed(call: Callable[[str], None], reviews: list[str], requests: int, warmup: int) -> list[float]:
    for i in range(warmup):
        call(reviews[i % len(reviews)])
    seconds = []
    for i in range(requests):
        started = time.perf_counter()
        call(reviews[i % len(reviews)])
        seconds.append(time.perf_counter() - started)
    return seconds


def row(name: str, seconds: list[float]) -> str:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    ms = [1000 * v for v in (cuts[49], cuts[89], cuts[98], statistics.fmean(seconds))]
    return f"| {name} | {len(seconds)} | " + " | ".join(f"{v:.2f}" for v in ms) + " |"


def local_cloud_latency(reviews: list[str], requests: int, warmup: int) -> dict[str, list[float]]:
    """The same one-review requests through the running local cloud's endpoint (whatever it serves)."""
    from reviewsense.target import resolve

    target = resolve("local")
    client = target.client("sagemaker-runtime")
    name = target.settings.endpoint_name

    def via_local_cloud(text: str) -> None:
        answer = client.invoke_endpoint(
            EndpointName=name, ContentType="application/json", Body=json.dumps({"instances": [text]})
        )
        json.loads(answer["Body"].read())

    return {
        f"boto3 invoke_endpoint, local cloud endpoint {name}": timed(
            via_local_cloud, reviews, requests, warmup
        )
    }


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", help="model directory or model.tar.gz (default: the tiny linear model)")
    parser.add_argument("--data", default=str(DATASET))
    parser.add_argument("--reviews", type=int, default=500, help="distinct real reviews to cycle through")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--local-cloud",
        action="store_true",
        help="also time the running local cloud's endpoint (after `make demo`): the same requests through "
        "the local SageMaker runtime, its variants and data capture",
    )
    args = parser.parse_args(argv)

    import boto3

    reviews = real_reviews(Path(args.data), args.reviews)
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        model = Path(args.model) if args.model else Path(tmp) / "model.tar.gz"
        if not args.model:
            model.write_bytes(model_archive(project_root()))
        port = free_port()
        proc = start(model, port, Path(tmp) / "serve.log")
        try:
            client = boto3.client(
                "sagemaker-runtime",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )

            def via_boto3(text: str) -> None:
                answer = client.invoke_endpoint(
                    EndpointName="reviewsense",
                    ContentType="application/json",
                    Body=json.dumps({"instances": [text]}),
                )
                json.loads(answer["Body"].read())

            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def via_http(text: str) -> None:
                body = json.dumps({"instances": [text]})
                headers = {"Content-Type": "application/json"}
                connection.request("POST", "/endpoints/reviewsense/invocations", body, headers)
                response = connection.getresponse()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {response.read()!r}")
                json.loads(response.read())

            results["boto3 invoke_endpoint"] = timed(via_boto3, reviews, args.requests, args.warmup)
            results["plain HTTP, keep-alive"] = timed(via_http, reviews, args.requests, args.warmup)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if args.local_cloud:
        results.update(local_cloud_latency(reviews, args.requests, args.warmup))
    served = args.model or "the tiny linear model (reviewsense.localmodel)"
    print(f"model: {served}; {len(reviews)} real reviews")
    print("| one review through reviewsense serve | requests | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds in results.items():
        print(row(name, seconds))
    return results


if __name__ == "__main__":
    main()
