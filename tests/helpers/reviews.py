"""A Kaggle-format review frame (same column names as the shared dataset), made in the test session.

About 60 % positive, with a few rows without text; small enough for tiny-model training runs.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

POSITIVE = [
    "love this dress",
    "great fit and perfect color",
    "beautiful and so comfortable",
    "gorgeous top, love it",
]
NEUTRAL = [
    "it is okay, nothing special",
    "average quality, fits fine",
    "decent but the color is meh",
    "so-so fabric",
]
NEGATIVE = [
    "terrible quality, returned it",
    "awful fit and cheap fabric",
    "very disappointed, poor material",
    "horrible, fell apart",
]
TITLES = {5: "Love it", 4: "Nice", 3: "Okay", 2: "Meh", 1: "Disappointed"}
DEPARTMENTS = [
    ("General", "Dresses", "Dresses"),
    ("General Petite", "Tops", "Knits"),
    ("Initmates", "Intimate", "Lounge"),
]


def make_kaggle_frame(n: int = 90, seed: int = 7) -> pd.DataFrame:
    """A Kaggle-format frame (same column names), about 60 % positive, with a few rows without text."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        rating = [5, 5, 5, 4, 4, 3, 3, 2, 1, 1][i % 10]
        pool = POSITIVE if rating >= 4 else NEUTRAL if rating == 3 else NEGATIVE
        text: str | None = f"{rnd.choice(pool)}. {rnd.choice(pool)} number {i}"
        if i in (13, 47):
            text = None
        division, department, cls = DEPARTMENTS[i % 3]
        rows.append(
            {
                "Clothing ID": 1000 + i % 7,
                "Age": 20 + i % 50,
                "Title": TITLES[rating] if i % 4 else None,
                "Review Text": text,
                "Rating": rating,
                "Recommended IND": int(rating >= 4),
                "Positive Feedback Count": i % 5,
                "Division Name": division,
                "Department Name": department,
                "Class Name": cls,
            }
        )
    return pd.DataFrame(rows)
