"""Ingestion benchmark: how long a dataset takes from bytes to queryable Parquet, measured three ways.

1. ``parse``: the pure parser alone (CSV/JSON -> canonical rows + quarantine).
2. ``service``: the ingest use case against moto in-process (parse + Parquet + Glue + manifest).
3. ``local cloud``: upload with boto3 -> EventBridge -> ingest Lambda -> manifest visible, end to end.

Run with ``make bench-ingest`` (all three in one run, side by side); prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chalicelib.config import Settings
from chalicelib.domain.reviews import ReviewParser
from reviewsense.target import free_port


def bench_parse(data: bytes, key: str) -> tuple[float, int]:
    started = time.perf_counter()
    result = ReviewParser().parse(data, source_key=key, channel="reviews", ingested_at=datetime.now(UTC))
    return time.perf_counter() - started, result.total_records


def bench_service(data: bytes, key: str) -> float:
    import boto3
    from moto import mock_aws

    import app
    from chalicelib.container import Container
    from chalicelib.domain.lake import SourceObject
    from reviewsense.localcloud.provision import Provisioner

    settings = Settings()
    with mock_aws():
        session = boto3.session.Session(region_name=settings.region)
        Provisioner(session, settings, None).provision(app.app, None)  # type: ignore[arg-type]
        session.client("s3").put_object(Bucket=settings.lake_bucket, Key=key, Body=data)
        service = Container(settings, session).ingest_service
        started = time.perf_counter()
        service.ingest(SourceObject(settings.lake_bucket, key, "bench"))
        return time.perf_counter() - started


def bench_local_cloud(data: bytes, key: str) -> float:
    from reviewsense.lake import wait_for_ingestion
    from reviewsense.localcloud.server import LocalCloud, LocalCloudOptions
    from reviewsense.target import Target, project_root, stage_settings

    with tempfile.TemporaryDirectory() as home:
        cloud = LocalCloud(
            LocalCloudOptions(home=Path(home), project_root=project_root(), port=free_port(), persist=False)
        )
        cloud.start()
        try:
            import boto3

            session = boto3.session.Session(region_name="us-east-1")
            target = Target(
                stage_settings("local", cloud.endpoint, "us-east-1"), session, cloud.endpoint, "local"
            )
            started = time.perf_counter()
            etag = target.client("s3").put_object(Bucket=target.settings.lake_bucket, Key=key, Body=data)[
                "ETag"
            ]
            done = wait_for_ingestion(target, {key: etag.strip('"')}, timeout_s=600)
            elapsed = time.perf_counter() - started
            assert done, "ingestion did not finish"
            return elapsed
        finally:
            cloud.stop()


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/womens_clothing_ecommerce_reviews.csv.gz")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    data = Path(args.data).read_bytes()
    key = f"raw/reviews/{Path(args.data).name}"
    parse_s, records = bench_parse(data, key)
    service_s = bench_service(data, key)
    cloud_s = bench_local_cloud(data, key)
    size_mb = len(data) / 1e6
    print(f"dataset: {args.data} ({size_mb:.1f} MB, {records} records), {os.cpu_count()} CPUs\n")
    print("| stage | seconds | records/s |")
    print("|---|---:|---:|")
    for name, seconds in (
        ("parse (pure)", parse_s),
        ("ingest service on moto", service_s),
        ("local cloud, upload to queryable", cloud_s),
    ):
        print(f"| {name} | {seconds:.2f} | {records / seconds:,.0f} |")
    return {"parse_s": parse_s, "service_s": service_s, "local_cloud_s": cloud_s, "records": records}


if __name__ == "__main__":
    main()
