"""Rating -> sentiment mapping shared by ingestion, training and scoring: the one definition of the rule.

Negative = rating 1-2, neutral = 3, positive = 4-5 (the 3-class protocol of the published results).
Sentiment is stored as -1/0/1 in the lake; models use class indices 0/1/2 in the same order. The lake
(``chalicelib.domain.reviews``) and the training jobs (``training.data``, shipped with this package)
both read the rule from here.
"""

from __future__ import annotations

SENTIMENT_NAMES: dict[int, str] = {-1: "negative", 0: "neutral", 1: "positive"}

#: The star ratings of each sentiment.
RATING_RULE: dict[int, tuple[int, ...]] = {-1: (1, 2), 0: (3,), 1: (4, 5)}

_SENTIMENT_OF_STARS: dict[int, int] = {
    stars: sentiment for sentiment, ratings in RATING_RULE.items() for stars in ratings
}


def sentiment_from_rating(rating: int | None) -> int | None:
    """-1, 0 or 1 for a 1-5 star rating; ``None`` when the feedback carries no rating (or one outside 1-5)."""
    if rating is None:
        return None
    return _SENTIMENT_OF_STARS.get(rating)


def class_index(sentiment: int) -> int:
    """Model class index (0 negative, 1 neutral, 2 positive) of a -1/0/1 sentiment."""
    return sentiment + 1


#: Class names in class-index order (``class_index``): the labels every model is trained on.
CLASS_NAMES: tuple[str, ...] = tuple(SENTIMENT_NAMES[s] for s in sorted(SENTIMENT_NAMES))
