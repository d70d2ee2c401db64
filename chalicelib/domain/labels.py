"""Rating -> sentiment mapping of the lake: ingestion (``chalicelib.domain.reviews``) derives it.

The training code applies the same rule to ratings in ``training/data.py`` (``rating_to_label``).

Negative = rating 1-2, neutral = 3, positive = 4-5 (the 3-class protocol of the published results).
Sentiment is stored as -1/0/1 in the lake; models use class indices 0/1/2 in the same order.
"""

from __future__ import annotations

SENTIMENT_NAMES: dict[int, str] = {-1: "negative", 0: "neutral", 1: "positive"}


def sentiment_from_rating(rating: int | None) -> int | None:
    """-1, 0 or 1 for a 1-5 star rating; ``None`` when the feedback carries no rating."""
    if rating is None:
        return None
    if rating <= 2:
        return -1
    if rating == 3:
        return 0
    return 1


def class_index(sentiment: int) -> int:
    """Model class index (0 negative, 1 neutral, 2 positive) of a -1/0/1 sentiment."""
    return sentiment + 1
