"""Load labelled reviews from the curated lake (Parquet) or the raw Kaggle CSV into one canonical frame.

featurize, train, evaluate and the baselines all read reviews through :func:`load_reviews`. The
mapping rating -> label (0 = negative: 1-2 stars, 1 = neutral: 3, 2 = positive: 4-5) and the column
names are the lake's own (``chalicelib.domain.labels`` and ``chalicelib.domain.tables``), imported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chalicelib.domain.labels import (
    CLASS_NAMES,
    RATING_RULE,
    SENTIMENT_NAMES,
    class_index,
    sentiment_from_rating,
)
from chalicelib.domain.tables import REVIEW_INPUT_COLUMNS

log = logging.getLogger(__name__)

#: Class names in class-index order, and the canonical columns: both from ``chalicelib.domain``, the one
#: definition the lake uses too.
LABELS: tuple[str, ...] = CLASS_NAMES
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}

CANONICAL_COLUMNS: tuple[str, ...] = (*REVIEW_INPUT_COLUMNS, "label")
FACET_COLUMNS: tuple[str, ...] = ("channel", "product_id", "division", "department", "product_class", "age")

KAGGLE_COLUMNS: dict[str, str] = {
    "Clothing ID": "product_id",
    "Age": "age",
    "Title": "title",
    "Review Text": "text",
    "Rating": "rating",
    "Recommended IND": "recommended",
    "Positive Feedback Count": "positive_feedback_count",
    "Division Name": "division",
    "Department Name": "department",
    "Class Name": "product_class",
}

_DATA_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".json")


def label_map() -> dict[str, Any]:
    """The label map saved with every model."""
    return {
        "labels": list(LABELS),
        "label2id": dict(LABEL2ID),
        "id2label": {str(i): name for i, name in enumerate(LABELS)},
        "rating_rule": {SENTIMENT_NAMES[s]: list(stars) for s, stars in RATING_RULE.items()},
    }


def rating_to_label(rating: float | int | None) -> int | None:
    """1-2 stars -> 0 (negative), 3 -> 1 (neutral), 4-5 -> 2 (positive); anything else -> None.

    The lake's rule (``sentiment_from_rating``) on the rounded rating, as a class index.
    """
    if rating is None or pd.isna(rating):
        return None
    sentiment = sentiment_from_rating(round(float(rating)))
    return None if sentiment is None else class_index(sentiment)


def _is_kaggle(frame: pd.DataFrame) -> bool:
    return "Review Text" in frame.columns or "Rating" in frame.columns


def _from_kaggle(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.rename(columns=KAGGLE_COLUMNS)
    index_col = next((c for c in out.columns if str(c).startswith("Unnamed")), None)
    ids = out[index_col] if index_col is not None else pd.Series(range(len(out)), index=out.index)
    out["review_id"] = "kaggle-" + ids.astype(str)
    out["channel"] = "kaggle"
    if index_col is not None:
        out = out.drop(columns=[index_col])
    return out


def _read_file(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    if name.endswith((".jsonl", ".jsonl.gz")):
        return pd.read_json(path, lines=True)
    if name.endswith(".json"):
        return pd.read_json(path)
    raise ValueError(f"unsupported data file {path} (expected Parquet, CSV, CSV.gz or JSONL)")


def _hive_partitions(path: Path, root: Path) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in path.relative_to(root).parent.parts:
        if "=" in part:
            key, _, value = part.partition("=")
            parts[key] = value
    return parts


def data_files(path: str | Path) -> list[Path]:
    """The data files under a directory (recursively, hive partitions included), or the file itself."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no data at {p}")
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file() and f.name.lower().endswith(_DATA_SUFFIXES) and not f.name.startswith((".", "_"))
    )
    if not files:
        raise FileNotFoundError(f"no Parquet/CSV/JSONL files under {p}")
    return files


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read every data file under ``path`` into one frame (hive partition values fill missing columns)."""
    root = Path(path)
    frames = []
    for f in data_files(root):
        frame = _read_file(f)
        if _is_kaggle(frame):
            frame = _from_kaggle(frame)
        if root.is_dir():
            for key, value in _hive_partitions(f, root).items():
                if key not in frame.columns:
                    frame[key] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def canonicalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame the canonical columns and types; derive ``label`` from rating, else sentiment."""
    out = frame.copy()
    if _is_kaggle(out):
        out = _from_kaggle(out)
    for col in CANONICAL_COLUMNS:
        if col not in out.columns:
            out[col] = None
    out["title"] = out["title"].fillna("").astype(str).str.strip()
    out["text"] = out["text"].fillna("").astype(str).str.strip()
    out["rating"] = pd.to_numeric(out["rating"], errors="coerce")
    from_rating = out["rating"].map(rating_to_label)
    label = pd.to_numeric(out["label"], errors="coerce")
    if "sentiment" in out.columns:
        from_sentiment = pd.to_numeric(out["sentiment"], errors="coerce") + 1
        from_sentiment = from_sentiment.where(from_sentiment.isin([0, 1, 2]))
    else:
        from_sentiment = pd.Series(np.nan, index=out.index)
    out["label"] = label.fillna(from_rating.astype("float64")).fillna(from_sentiment)
    out["review_id"] = out["review_id"].astype("string")
    missing_id = out["review_id"].isna()
    if missing_id.any():
        out.loc[missing_id, "review_id"] = [f"row-{i}" for i in np.flatnonzero(missing_id.to_numpy())]
    for col in ("channel", "division", "department", "product_class"):
        out[col] = out[col].astype("string")
    out["product_id"] = out["product_id"].astype("string")
    out["age"] = pd.to_numeric(out["age"], errors="coerce")
    return out


def load_reviews(
    path: str | Path,
    *,
    require_labels: bool = True,
    drop_empty_text: bool = True,
    extra_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Load reviews with canonical columns; drops rows without text and (by default) without a label."""
    frame = canonicalize(read_raw(path))
    n = len(frame)
    if drop_empty_text:
        frame = frame[frame["text"].str.len() > 0]
    if require_labels:
        frame = frame[frame["label"].notna()]
    frame = frame.copy()
    if require_labels:
        frame["label"] = frame["label"].astype("int64")
    keep = [*CANONICAL_COLUMNS, *(c for c in extra_columns if c in frame.columns)]
    for col in ("split", "input_ids"):
        if col in frame.columns and col not in keep:
            keep.append(col)
    log.info("loaded %d of %d reviews from %s", len(frame), n, path)
    return frame[keep].reset_index(drop=True)


def items(frame: pd.DataFrame) -> list[dict[str, str]]:
    """The {title, text} objects the predictor scores."""
    return [
        {"title": t, "text": x}
        for t, x in zip(frame["title"].astype(str), frame["text"].astype(str), strict=True)
    ]
