"""Batch scoring throughput: the full shared dataset through ``reviewsense score --batch --model``.

Runs the command's own steps (read the raw Kaggle CSV, reject rows without text, score every other
row with ``training/inference.py`` in this process, write the predictions and the rejects) on a model
artifact: by default the tiny TF-IDF + logistic regression of ``reviewsense.localmodel``, or
``--model`` (any model directory or ``model.tar.gz``). Prints rows, rejects, seconds and reviews/s for
reading and for scoring + writing.

Run with ``make bench-batch`` (``MODEL=path/to/model`` to measure another artifact).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
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
    rows = len(batch.rows)
    print("| step | rows | seconds | reviews/s |\n|---|---:|---:|---:|")
    print(
        f"| read + reject ({args.data.name}) | {batch.total:,} | {read_s:.2f} | {batch.total / read_s:,.0f} |"
    )
    print(f"| score + write ({model.name}) | {rows:,} | {summary.seconds:.2f} | {summary.rate:,.0f} |")
    print(f"| end to end | {rows:,} | {total_s:.2f} | {rows / total_s:,.0f} |")
    print(f"rejected: {summary.rejected:,} {summary.reasons}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
