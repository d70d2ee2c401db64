"""Batch scoring throughput: the full shared dataset through ``reviewsense score --batch --model``.

Runs the command's own steps (read the raw Kaggle CSV, reject rows without text, score every other
row with ``training/inference.py`` in this process, write the predictions and the rejects) on a model
artifact: by default the tiny TF-IDF + logistic regression of ``reviewsense.localmodel``, or
``--model`` (any model directory or ``model.tar.gz``). Prints rows, rejects, seconds and reviews/s for
reading and for scoring + writing.

With ``--local-cloud`` it also scores the same rows with the transform-job path of the command (no
``--model``): an in-process local cloud, the model registered as an Approved package (the champion),
``CreateTransformJob``, the local SageMaker running the model's serving handler, the ``.out`` files read
back and joined.

Run with ``make bench-batch`` (``MODEL=path/to/model`` to measure another artifact).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reviewsense import batchscore as bs
from reviewsense.localmodel import model_archive
from reviewsense.target import project_root

DATASET = Path("../shared/data/womens_clothing_ecommerce_reviews.csv.gz")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATASET)
    parser.add_argument("--model", type=Path, default=None, help="default: the tiny linear model")
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary .parquet file")
    parser.add_argument("--local-cloud", action="store_true", help="also run it as a local transform job")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "model.tar.gz"
            model.write_bytes(model_archive(project_root()))
        out = args.out or Path(tmp) / "predictions.parquet"
        started = time.perf_counter()
        batch = bs.read_file(args.data)
        read_s = time.perf_counter() - started
        scorer = bs.LocalModelScorer(model)
        summary = bs.run_batch(batch, out, scorer.score, str(model), progress_interval_s=5.0)
        total_s = time.perf_counter() - started
        transform = transform_job(batch, model, Path(tmp)) if args.local_cloud else None
    rows = len(batch.rows)
    print("| step | rows | seconds | reviews/s |\n|---|---:|---:|---:|")
    print(
        f"| read + reject ({args.data.name}) | {batch.total:,} | {read_s:.2f} | {batch.total / read_s:,.0f} |"
    )
    print(f"| score + write ({model.name}) | {rows:,} | {summary.seconds:.2f} | {summary.rate:,.0f} |")
    print(f"| end to end | {rows:,} | {total_s:.2f} | {rows / total_s:,.0f} |")
    if transform is not None:
        seconds, engine = transform
        rate = rows / seconds
        print(f"| transform job on the local cloud ({engine}) | {rows:,} | {seconds:.2f} | {rate:,.0f} |")
    print(f"rejected: {summary.rejected:,} {summary.reasons}", file=sys.stderr)
    return 0


def transform_job(batch: bs.BatchInput, model: Path, tmp: Path) -> tuple[float, str]:
    """Score ``batch`` as ``score --batch`` without ``--model`` does, on an in-process local cloud."""
    import boto3

    from chalicelib.config import Settings
    from reviewsense.batchtransform import TransformJobScorer
    from reviewsense.localcloud.server import LocalCloud, LocalCloudOptions
    from reviewsense.target import Target, free_port, local_client
    from training.model_io import pack_model

    archive = model if model.is_file() else pack_model(model, tmp / "packed" / "model.tar.gz")
    options = LocalCloudOptions(
        home=tmp / "cloud", project_root=project_root(), port=free_port(), persist=False, state_machines=False
    )
    cloud = LocalCloud(options)
    cloud.start()
    try:
        settings = Settings.from_env()
        s3, sm = local_client(cloud.endpoint, "s3"), local_client(cloud.endpoint, "sagemaker")
        key = "models/bench-batch/model.tar.gz"
        s3.upload_file(str(archive), settings.lake_bucket, key)
        group = "bench-batch"
        sm.create_model_package_group(ModelPackageGroupName=group)
        sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [
                    {"Image": settings.inference_image, "ModelDataUrl": f"s3://{settings.lake_bucket}/{key}"}
                ],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="Approved",
        )
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=settings.region
        )
        tgt = Target(replace(settings, model_package_group=group), session, cloud.endpoint, "local")
        scorer = TransformJobScorer(tgt, poll_s=0.5)
        summary = bs.run_batch(
            batch, tmp / "transform.parquet", scorer.score, scorer.name, progress_interval_s=5.0
        )
        return summary.seconds, scorer.name
    finally:
        cloud.stop()


if __name__ == "__main__":
    raise SystemExit(main())
