"""Where the tests find the repository, their event samples and the shared dataset."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
DATASET = ROOT.parent / "shared" / "data" / "womens_clothing_ecommerce_reviews.csv.gz"
