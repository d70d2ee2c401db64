"""featurize.py on fixture data: splits, stratification, feature-store records, optional S3 / Glue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training import featurize


def test_splits_are_disjoint_stratified_and_tokenized(features_dir: Path, kaggle_csv: Path) -> None:
    parts = {s: pd.read_parquet(features_dir / s / "part-00000.parquet") for s in featurize.SPLITS}
    ids = [set(p["review_id"]) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(p) for p in parts.values()) == 88  # 90 rows, 2 without text
    for part in parts.values():
        assert set(part["label"]) == {0, 1, 2}  # every class in every split
        assert part["input_ids"].map(len).between(2, 32).all()
        assert part["input_ids"].map(lambda ids: ids[0]).eq(101).all()  # [CLS]
    assert len(parts["validation"]) == len(parts["test"])
    assert len(parts["train"]) > 2 * len(parts["test"])


def test_feature_store_records_follow_the_offline_store_layout(features_dir: Path) -> None:
    files = list((features_dir / "feature-store" / "reviewsense-reviews" / "data").rglob("*.parquet"))
    assert len(files) == 1
    assert "year=2024/month=05/day=06/hour=07" in files[0].as_posix()
    records = pd.read_parquet(files[0])
    assert {
        "record_id",
        "event_time",
        "input_ids",
        "label",
        "write_time",
        "api_invocation_time",
        "is_deleted",
    } <= set(records.columns)
    assert records["record_id"].is_unique and len(records) == 88
    assert (records["event_time"] == "2024-05-06T07:08:09Z").all()
    assert not records["is_deleted"].any()


def test_balancing_downsamples_to_the_smallest_class(kaggle_csv: Path, tmp_path: Path) -> None:
    summary = featurize.main(
        [
            "--input",
            str(kaggle_csv),
            "--output-dir",
            str(tmp_path),
            "--balance",
            "true",
            "--tokenizer",
            "none",
        ]
    )
    totals = {
        label: sum(s["classes"][label] for s in summary["splits"].values())
        for label in ("negative", "neutral", "positive")
    }
    assert len(set(totals.values())) == 1
    assert summary["balanced"] is True
    assert "input_ids" not in pd.read_parquet(tmp_path / "train" / "part-00000.parquet").columns


def test_glue_without_s3_is_rejected(kaggle_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs --s3-output"):
        featurize.main(["--input", str(kaggle_csv), "--output-dir", str(tmp_path), "--glue-database", "db"])


def test_upload_and_glue_registration_with_moto(
    kaggle_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto = pytest.importorskip("moto")
    pytest.importorskip("awswrangler")
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="lake")
        summary = featurize.main(
            [
                "--input",
                str(kaggle_csv),
                "--output-dir",
                str(tmp_path),
                "--tokenizer",
                "none",
                "--s3-output",
                "s3://lake/features",
                "--glue-database",
                "reviewsense",
                "--event-time",
                "2024-05-06T07:00:00",
            ]
        )
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="lake")["Contents"]]
        table = boto3.client("glue").get_table(DatabaseName="reviewsense", Name="reviewsense_reviews")[
            "Table"
        ]
        parts = boto3.client("glue").get_partitions(
            DatabaseName="reviewsense", TableName="reviewsense_reviews"
        )
    assert "features/train/part-00000.parquet" in keys
    assert any(k.startswith("features/feature-store/reviewsense-reviews/data/year=2024/") for k in keys)
    assert summary["glue_table"] == "reviewsense.reviewsense_reviews"
    assert {c["Name"] for c in table["StorageDescriptor"]["Columns"]} >= {
        "record_id",
        "event_time",
        "input_ids",
    }
    assert parts["Partitions"][0]["Values"] == ["2024", "05", "06", "07"]
