"""``reviewsense score --batch table:reviews``: the curated table, read as ``reviewsense query`` reads it.

The Kaggle file goes through the real ingest handler (moto in-process), so the ``reviews`` table holds
curated rows with their review ids; the batch reads it through the same SQL path as the query
command (DuckDB over the table's Parquet locally) and scores it with the tiny linear model.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from chalice.test import Client

import app
from chalicelib.config import Settings
from reviewsense import batchscore as bs
from reviewsense.errors import OperatorError
from reviewsense.localmodel import model_archive
from reviewsense.target import Target
from tests.functional.test_ingest_handler import BUCKET, deliver
from tests.helpers.paths import ROOT

HEADER = (
    ",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,Positive Feedback Count,"
    "Division Name,Department Name,Class Name\n"
)


def test_the_curated_reviews_table_is_scored_with_its_review_ids(
    lake: Any, settings: Settings, tmp_path: Path
) -> None:
    words = ["great", "terrible"]
    rows = "".join(
        f'{i},{1000 + i},{30 + i},Title {i},"{words[i % 2]}, number {i}",{1 + i % 5},1,0,General,Tops,Knits\n'
        for i in range(12)
    )
    lake.client("s3").put_object(
        Bucket=BUCKET, Key="raw/reviews/kaggle.csv.gz", Body=gzip.compress((HEADER + rows).encode())
    )
    with Client(app.app, stage_name="local") as client:
        assert deliver(client, "raw/reviews/kaggle.csv.gz")["curated"] == 12
    tgt = Target(settings, lake, None, "local")
    batch = bs.read_table(tgt, bs.table_name("table:reviews") or "")
    assert (batch.source, batch.total, batch.rejects) == ("table:reviews", 12, [])
    model = tmp_path / "model.tar.gz"
    model.write_bytes(model_archive(ROOT))
    out = tmp_path / "reviews.parquet"
    summary = bs.run_batch(batch, out, bs.LocalModelScorer(model).score, "model")
    assert summary.scored == 12
    scored = {r["id"]: r["label"] for r in pq.read_table(out).to_pylist()}
    # the curated review ids are the channel's own ids: reviews-<the Kaggle index>
    assert scored == {f"reviews-{i}": ("positive" if i % 2 == 0 else "negative") for i in range(12)}


def test_a_missing_table_or_one_without_text_is_refused(lake: Any, settings: Settings) -> None:
    tgt = Target(settings, lake, None, "local")
    with pytest.raises(OperatorError, match="no table quarantine in the catalog database reviewsense"):
        bs.read_table(tgt, "quarantine")
    lake.client("s3").put_object(Bucket=BUCKET, Key="raw/reviews/bad.csv", Body=b"text,rating\n,5\n")
    with Client(app.app, stage_name="local") as client:
        assert deliver(client, "raw/reviews/bad.csv")["quarantined"] == 1
    with pytest.raises(OperatorError, match=r"table quarantine has no text column \(columns: source_key"):
        bs.read_table(tgt, "quarantine")
