"""Loading labelled reviews from the raw Kaggle CSV and from the curated Parquet lake."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.data import CANONICAL_COLUMNS, LABELS, label_map, load_reviews, rating_to_label


@pytest.mark.parametrize(
    ("rating", "label"), [(1, 0), (2, 0), (3, 1), (4, 2), (5, 2), (None, None), (0, None), (6, None)]
)
def test_rating_to_label(rating: int | None, label: int | None) -> None:
    assert rating_to_label(rating) == label


def test_label_map_is_the_documented_one() -> None:
    lm = label_map()
    assert lm["labels"] == list(LABELS) == ["negative", "neutral", "positive"]
    assert lm["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}


def test_raw_kaggle_csv_loads_as_is(kaggle_csv: Path) -> None:
    frame = load_reviews(kaggle_csv)
    raw = pd.read_csv(kaggle_csv)
    assert list(frame.columns)[: len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)
    assert len(frame) == raw["Review Text"].notna().sum() == len(raw) - 2  # rows without text dropped
    assert frame["review_id"].str.startswith("kaggle-").all()
    assert frame["review_id"].is_unique
    expected = raw.dropna(subset=["Review Text"])["Rating"].map(rating_to_label).to_numpy()
    assert (frame["label"].to_numpy() == expected).all()
    assert (frame["title"] == "").sum() > 0  # missing titles become empty strings, not "nan"
    assert set(frame["department"]) == {"Dresses", "Tops", "Intimate"}


def test_curated_parquet_lake_with_hive_partitions(tmp_path: Path) -> None:
    base = {
        "product_id": "p1",
        "division": "General",
        "department": "Dresses",
        "product_class": "Dresses",
        "age": 30,
        "title": "t",
        "recommended": 1,
        "source_key": "k",
        "ingested_at": "2024-01-01T00:00:00Z",
    }
    email = pd.DataFrame(
        [
            {**base, "review_id": "e1", "channel": "email", "text": "love it", "rating": 5, "sentiment": 1},
            {**base, "review_id": "e2", "channel": "email", "text": "", "rating": 1, "sentiment": -1},
            {
                **base,
                "review_id": "e3",
                "channel": "email",
                "text": "no label",
                "rating": None,
                "sentiment": None,
            },
        ]
    )
    chat = pd.DataFrame(
        [
            {**base, "review_id": "c1", "channel": "chat", "text": "meh", "rating": None, "sentiment": 0},
            {**base, "review_id": "c2", "channel": "chat", "text": "bad", "rating": 2, "sentiment": None},
        ]
    )
    for frame, channel in ((email, "email"), (chat, "chat")):
        part = tmp_path / f"channel={channel}" / "ingest_date=2024-01-01"
        part.mkdir(parents=True)
        frame.to_parquet(part / "part-0.parquet", index=False)
    loaded = load_reviews(tmp_path).set_index("review_id")
    assert sorted(loaded.index) == ["c1", "c2", "e1"]  # e2 has no text, e3 no label
    assert loaded.loc["c1", "label"] == 1  # from sentiment when rating is missing
    assert loaded.loc["c2", "label"] == 0
    assert loaded.loc["e1", "channel"] == "email"
    unlabelled = load_reviews(tmp_path, require_labels=False)
    assert "e3" in set(unlabelled["review_id"])


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_reviews(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no Parquet/CSV/JSONL"):
        load_reviews(tmp_path)
