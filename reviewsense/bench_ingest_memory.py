"""Peak memory of one ingest, so the function's memory size can be chosen from numbers, not guesses.

The ingest service reads the raw object as a stream and stops at ``max_object_bytes`` of decompressed
data, so its memory follows the limit (and the rows it parses), never the compression ratio. Each case
runs in a fresh process against moto in-process and reports the ``tracemalloc`` peak (Python
allocations) and the process's maximum resident set size (everything, pyarrow included):

- ``kaggle``: the shared dataset as downloaded (gzip CSV), default limit;
- ``bomb``: a gzip of about 1 MB that inflates to ``--bomb-mib`` MiB, with ``--limit-mib`` as limit.

Run with ``make bench-ingest-memory``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from chalicelib.config import Settings

DEFAULT_DATA = "../shared/data/womens_clothing_ecommerce_reviews.csv.gz"


def _bomb(inflated_bytes: int) -> bytes:
    """One gzip member, compressed block by block so building it never holds the inflated size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(b"text,rating\n")]
    block = b"x" * (1 << 20)
    for _ in range(inflated_bytes // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    return b"".join(parts)


def measure(body: bytes, key: str, settings: Settings) -> dict[str, Any]:
    """Ingest ``body`` once under moto and return its report, peak traced bytes and seconds."""
    import boto3
    from moto import mock_aws

    import app
    from chalicelib.adapters.events import EventBridgePublisher
    from chalicelib.adapters.glue import GlueCatalog
    from chalicelib.adapters.parquet import WranglerParquetWriter
    from chalicelib.adapters.s3 import S3ObjectStore
    from chalicelib.domain.lake import SourceObject
    from chalicelib.services.ingest import IngestService
    from reviewsense.localcloud.provision import Provisioner

    with mock_aws():
        session = boto3.session.Session(region_name=settings.region)
        Provisioner(session, settings, None).provision(app.app, None)  # type: ignore[arg-type]
        s3 = session.client("s3")
        events = session.client("events")
        events.create_event_bus(Name="bench")
        # Measure one ingest, called here: no upload event (it would target a Lambda moto cannot run).
        s3.put_bucket_notification_configuration(Bucket=settings.lake_bucket, NotificationConfiguration={})
        s3.put_object(Bucket=settings.lake_bucket, Key=key, Body=body)
        del body
        service = IngestService(
            settings,
            S3ObjectStore(s3),
            WranglerParquetWriter(session),
            GlueCatalog(session.client("glue")),
            EventBridgePublisher(events, "bench", settings.event_source),  # a bus with no Lambda rules
        )
        tracemalloc.start()
        started = time.perf_counter()
        report = service.ingest(SourceObject(settings.lake_bucket, key))
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"report": report, "traced_peak_bytes": peak, "seconds": seconds}


def run_case(case: str, data: Path, bomb_mib: int, limit_mib: int) -> dict[str, Any]:
    settings = Settings()
    if case == "kaggle":
        body = data.read_bytes()
        key = f"raw/reviews/{data.name}"
        inflated = len(gzip.decompress(body))
    else:
        body = _bomb(bomb_mib << 20)
        key = "raw/reviews/bomb.csv.gz"
        inflated = (bomb_mib << 20) + len(b"text,rating\n")
        settings = replace(settings, max_object_bytes=limit_mib << 20)
    result = measure(body, key, settings)
    report = result.pop("report")
    return {
        "case": case,
        "compressed_bytes": len(body),
        "decompressed_bytes": inflated,
        "limit_bytes": settings.max_object_bytes,
        "curated": report.get("curated"),
        "reasons": report.get("reasons"),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **result,
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--bomb-mib", type=int, default=1024, help="decompressed size of the gzip bomb")
    parser.add_argument("--limit-mib", type=int, default=64, help="ingest limit for the bomb case")
    parser.add_argument("--case", choices=["kaggle", "bomb"], help="run one case in this process (internal)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if args.case:
        row = run_case(args.case, Path(args.data), args.bomb_mib, args.limit_mib)
        print(json.dumps(row))
        return [row]
    rows = []
    for case in ("kaggle", "bomb"):
        out = subprocess.run(
            [
                *(sys.executable, "-m", "reviewsense.bench_ingest_memory", "--case", case),
                *("--data", args.data, "--bomb-mib", str(args.bomb_mib), "--limit-mib", str(args.limit_mib)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 1 << 20
    print(
        "| case | compressed MiB | decompressed MiB | limit MiB | outcome "
        "| traced peak MiB | max RSS MiB | s |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        outcome = f"{r['curated']} curated, {json.dumps(r['reasons'])}"
        print(
            f"| {r['case']} | {r['compressed_bytes'] / mib:.2f} | {r['decompressed_bytes'] / mib:.1f} "
            f"| {r['limit_bytes'] / mib:.0f} | {outcome} | {r['traced_peak_bytes'] / mib:.1f} "
            f"| {r['max_rss_bytes'] / mib:.0f} | {r['seconds']:.1f} |"
        )
    return rows


if __name__ == "__main__":
    main()
