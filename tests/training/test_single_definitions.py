"""Each fact shared by the lake and the training jobs has one definition, in ``chalicelib.domain``.

The rating -> sentiment rule, the class names and the review columns are imported by ingestion and by
``training.data`` from the same module; these tests fail if either side grows its own copy again.
"""

from __future__ import annotations

import dataclasses

import chalicelib.domain.reviews as lake_reviews
import training.data as training_data
from chalicelib.domain import labels, tables
from chalicelib.domain.reviews import Review
from training import inference


def test_the_lake_and_training_use_one_rating_rule() -> None:
    # Imported, not redefined: the names the two modules use are the domain's own function objects.
    assert vars(lake_reviews)["sentiment_from_rating"] is labels.sentiment_from_rating
    assert vars(training_data)["sentiment_from_rating"] is labels.sentiment_from_rating
    assert vars(training_data)["class_index"] is labels.class_index
    for stars in range(0, 7):
        sentiment = labels.sentiment_from_rating(stars)
        expected = None if sentiment is None else labels.class_index(sentiment)
        assert training_data.rating_to_label(stars) == expected
        assert training_data.rating_to_label(float(stars)) == expected


def test_the_rating_rule_is_the_published_three_class_protocol() -> None:
    assert [labels.sentiment_from_rating(r) for r in (None, 0, 1, 2, 3, 4, 5, 6)] == [
        None,
        None,
        -1,
        -1,
        0,
        1,
        1,
        None,
    ]
    assert training_data.label_map()["rating_rule"] == {
        "negative": [1, 2],
        "neutral": [3],
        "positive": [4, 5],
    }


def test_class_names_are_defined_once() -> None:
    assert training_data.LABELS is labels.CLASS_NAMES
    assert labels.CLASS_NAMES == ("negative", "neutral", "positive")
    # inference.py is copied alone into the model archive, so it keeps a literal fallback: pinned here.
    assert inference.DEFAULT_LABELS == labels.CLASS_NAMES


def test_review_columns_are_the_tables_columns() -> None:
    fields = tuple(f.name for f in dataclasses.fields(Review))
    assert fields == tables.REVIEW_RECORD_COLUMNS
    assert set(fields) == {*tables.REVIEWS.column_names, "channel"}
    assert (*tables.REVIEW_INPUT_COLUMNS, "label") == training_data.CANONICAL_COLUMNS
    assert tables.REVIEW_INPUT_COLUMNS == (
        "review_id",
        "channel",
        "product_id",
        "division",
        "department",
        "product_class",
        "age",
        "title",
        "text",
        "rating",
        "recommended",
    )
