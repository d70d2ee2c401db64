"""Lake layout: channels, deterministic output keys, event key decoding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain import lake
from chalicelib.domain.labels import class_index, sentiment_from_rating
from chalicelib.events import InvalidEventError, source_object_from_eventbridge


@pytest.mark.parametrize(
    ("key", "channel"),
    [
        ("raw/email/2026/01/a.jsonl", "email"),
        ("raw/Chat/a.csv", "chat"),
        ("raw/a.csv", "reviews"),
        ("raw/bad channel!/a.csv", "reviews"),
    ],
)
def test_channel_for_key(key: str, channel: str) -> None:
    assert lake.channel_for_key(key) == channel


def test_output_keys_are_deterministic_per_source() -> None:
    when = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    digest = lake.source_digest("bucket", "raw/email/a.jsonl")
    assert digest == lake.source_digest("bucket", "raw/email/a.jsonl")
    assert digest != lake.source_digest("bucket", "raw/email/b.jsonl")
    key = lake.curated_key("curated/", "reviews", "email", when, digest)
    assert key == f"curated/reviews/channel=email/ingest_date=2026-03-04/{digest}.parquet"


def test_event_keys_are_url_decoded() -> None:
    assert lake.decode_event_key("raw/email/my+file%281%29.csv") == "raw/email/my file(1).csv"


def test_sentiment_and_class_index() -> None:
    assert [sentiment_from_rating(r) for r in (1, 2, 3, 4, 5, None)] == [-1, -1, 0, 1, 1, None]
    assert [class_index(s) for s in (-1, 0, 1)] == [0, 1, 2]


def test_eventbridge_s3_event_parsing() -> None:
    event = {
        "detail": {
            "bucket": {"name": "lake"},
            "object": {"key": "raw/x/a.csv", "etag": "abc", "size": 10, "version-id": "v1"},
        }
    }
    src = source_object_from_eventbridge(event)
    assert (src.bucket, src.key, src.etag, src.size, src.version_id) == (
        "lake",
        "raw/x/a.csv",
        "abc",
        10,
        "v1",
    )
    assert src.idempotency_key == "lake/raw/x/a.csv#v1"
    with pytest.raises(InvalidEventError):
        source_object_from_eventbridge({"detail": {"bucket": {}}})
