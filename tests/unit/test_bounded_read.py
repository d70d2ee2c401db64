"""The ingest size limit is on the decompressed size, enforced while streaming (issue 9)."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime

import pytest

from chalicelib.domain.reviews import QuarantineReason, ReviewParser

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CSV = b"text,rating\n" + b"".join(b"review number %d,5\n" % i for i in range(2000))


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000, 1 << 20])
def test_gzip_is_undone_whatever_the_chunking_including_concatenated_members(chunk: int) -> None:
    data = gzip.compress(CSV[: CSV.index(b"\n", 20000) + 1]) + gzip.compress(b"another review,4\n")
    result = ReviewParser().parse_stream(
        iter(split(data, chunk)),
        source_key="raw/reviews/x.csv.gz",
        channel="reviews",
        ingested_at=NOW,
        max_bytes=1 << 20,
    )
    expected = ReviewParser().parse(
        gzip.decompress(data), source_key="raw/reviews/x.csv", channel="reviews", ingested_at=NOW
    )
    assert len(result.reviews) == len(expected.reviews) > 0
    assert result.reviews[-1].text == "another review"
    assert not result.quarantined


def test_a_gzip_bomb_stops_at_the_limit_and_is_quarantined_with_both_byte_counts() -> None:
    bomb = gzip.compress(b"text\n" + b"a" * (64 << 20), compresslevel=9)
    assert len(bomb) < 256 << 10  # small on the wire: the compressed size says nothing
    limit = 1 << 20
    result = ReviewParser().parse_stream(
        iter(split(bomb, 16 << 10)),
        source_key="raw/reviews/bomb.csv.gz",
        channel="reviews",
        ingested_at=NOW,
        max_bytes=limit,
    )
    assert result.reviews == []
    [record] = result.quarantined
    assert (record.reason, record.record_number) == (QuarantineReason.OBJECT_TOO_LARGE, 0)
    compressed, inflated = (
        int(n) for n in re.findall(r"after (\d+) compressed bytes had inflated to (\d+)", record.detail)[0]
    )
    assert inflated == limit + 1  # reading stopped at the first byte past the limit
    assert compressed < len(bomb)  # ... long before the end of the compressed stream
    assert record.raw_record.startswith("text\naaaa")


def test_a_plain_object_over_the_limit_is_quarantined_too() -> None:
    result = ReviewParser().parse_stream(
        iter(split(CSV, 4096)),
        source_key="raw/reviews/x.csv",
        channel="reviews",
        ingested_at=NOW,
        max_bytes=10_000,
    )
    assert result.reason_counts() == {"object_too_large": 1}
    assert "limit of 10000 bytes" in result.quarantined[0].detail


def test_the_limit_is_on_the_decompressed_size_not_the_compressed_one() -> None:
    data = gzip.compress(CSV)
    limit = len(CSV) - 1  # well above the compressed size, one byte short of the real size
    assert len(data) < limit
    assert ReviewParser().parse(
        data, source_key="raw/reviews/x.csv.gz", channel="reviews", ingested_at=NOW, max_bytes=limit
    ).reason_counts() == {"object_too_large": 1}
    within = ReviewParser().parse(
        data, source_key="raw/reviews/x.csv.gz", channel="reviews", ingested_at=NOW, max_bytes=len(CSV)
    )
    assert (len(within.reviews), within.quarantined) == (2000, [])


def test_a_gzip_inside_a_gzip_is_not_inflated_a_second_time() -> None:
    inner = gzip.compress(b"text\n" + b"a" * (8 << 20))
    result = ReviewParser().parse(
        gzip.compress(inner),
        source_key="raw/reviews/x.csv.gz",
        channel="reviews",
        ingested_at=NOW,
        max_bytes=1 << 20,
    )
    texts = [r.text for r in result.reviews] + [q.raw_record for q in result.quarantined]
    assert texts
    assert not any("a" * 1000 in text for text in texts)  # the inner gzip stays compressed bytes


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (gzip.compress(CSV)[:-20], "ended before the end-of-stream marker"),
        (gzip.compress(CSV) + b"trailing junk", "trailing garbage"),
        (b"\x1f\x8b\x08not gzip", "corrupt gzip stream"),
    ],
)
def test_a_corrupt_or_truncated_gzip_is_unreadable(data: bytes, detail: str) -> None:
    result = ReviewParser().parse(data, source_key="raw/reviews/x.csv.gz", channel="reviews", ingested_at=NOW)
    [record] = result.quarantined
    assert record.reason is QuarantineReason.UNREADABLE_FILE
    assert detail in record.detail
    assert result.reviews == []
