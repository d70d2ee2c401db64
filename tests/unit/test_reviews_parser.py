"""The parser: every quarantine reason, every format, and nothing lost."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from chalicelib.domain.reviews import (
    FileFormat,
    ParseLimits,
    QuarantineReason,
    ReviewParser,
    normalise_column,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KAGGLE_HEADER = (
    ",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,Positive Feedback Count,"
    "Division Name,Department Name,Class Name\n"
)


def parse(data: bytes, key: str = "raw/reviews/file.csv", limits: ParseLimits | None = None):  # type: ignore[no-untyped-def]
    return ReviewParser(limits).parse(data, source_key=key, channel="reviews", ingested_at=NOW)


def test_kaggle_rows_map_to_the_canonical_schema() -> None:
    data = (
        KAGGLE_HEADER + '7,767,33,Nice,"Absolutely wonderful, silky",4,1,0,Initmates,Intimate,Intimates\n'
    ).encode()
    result = parse(data)
    assert result.file_format is FileFormat.CSV
    assert not result.quarantined
    (review,) = result.reviews
    assert review.review_id == "reviews-7"
    assert review.product_id == "767"
    assert (review.division, review.department, review.product_class) == (
        "Initmates",
        "Intimate",
        "Intimates",
    )
    assert (review.age, review.title, review.rating, review.recommended) == (33, "Nice", 4, True)
    assert review.text == "Absolutely wonderful, silky"
    assert review.sentiment == 1
    assert (review.source_key, review.record_number, review.ingested_at) == ("raw/reviews/file.csv", 1, NOW)


@pytest.mark.parametrize(
    ("rating", "sentiment"), [("1", -1), ("2", -1), ("3", 0), ("4", 1), ("5", 1), ("", None)]
)
def test_sentiment_derives_from_rating(rating: str, sentiment: int | None) -> None:
    result = parse(f"text,rating\ngood enough,{rating}\n".encode())
    assert result.reviews[0].sentiment == sentiment


def test_gzip_csv_is_read() -> None:
    result = parse(gzip.compress(b"Review Text,Rating\nlovely,5\n"), key="raw/reviews/x.csv.gz")
    assert [r.text for r in result.reviews] == ["lovely"]


def test_json_array_object_wrapper_and_jsonl() -> None:
    rows = [{"text": "a", "rating": 5}, {"body": "b", "stars": 1}]
    assert len(parse(json.dumps(rows).encode(), key="raw/app/x.json").reviews) == 2
    assert len(parse(json.dumps({"reviews": rows}).encode(), key="raw/app/x.json").reviews) == 2
    jsonl = "\n".join(json.dumps(r) for r in rows).encode()
    result = parse(jsonl, key="raw/app/x.jsonl")
    assert result.file_format is FileFormat.JSONL
    assert [r.rating for r in result.reviews] == [5, 1]


def test_format_is_sniffed_without_extension() -> None:
    assert parse(b'{"text": "hi"}\n', key="raw/app/upload").file_format is FileFormat.JSONL
    assert parse(b'[{"text": "hi"}]', key="raw/app/upload").file_format is FileFormat.JSON
    assert parse(b"text\nhi\n", key="raw/app/upload").file_format is FileFormat.CSV


def test_utf8_bom_and_utf16_are_decoded() -> None:
    assert parse("\ufefftext,rating\ncafé,5\n".encode()).reviews[0].text == "café"
    assert parse("text,rating\ncafé,5\n".encode("utf-16")).reviews[0].text == "café"


def test_extra_columns_are_tolerated_and_blank_lines_skipped() -> None:
    result = parse(b"text,rating,colour,size\nfine,4,red,M\n\n\nok,5,blue,S\n")
    assert [r.text for r in result.reviews] == ["fine", "ok"]
    assert result.total_records == 2


def reasons(data: bytes, key: str = "raw/reviews/file.csv", limits: ParseLimits | None = None) -> list[str]:
    return [q.reason.value for q in parse(data, key, limits).quarantined]


def test_reason_bad_encoding_only_for_the_bad_record() -> None:
    data = b"text,rating\ngood,5\ncaf\xe9 latin-1,4\n"
    result = parse(data)
    assert [r.text for r in result.reviews] == ["good"]
    (bad,) = result.quarantined
    assert bad.reason is QuarantineReason.BAD_ENCODING
    assert bad.record_number == 2
    assert "\\xe9" in bad.raw_record  # raw bytes kept, shown escaped


def test_reason_missing_text() -> None:
    assert reasons(b"text,rating\n   ,5\n") == ["missing_text"]
    assert reasons(b'{"text": null, "rating": 3}\n', key="raw/a/x.jsonl") == ["missing_text"]


def test_reason_missing_required_columns_for_every_row() -> None:
    result = parse(b"title,rating\nA,5\nB,4\n")
    assert [q.reason.value for q in result.quarantined] == ["missing_required_columns"] * 2
    assert "text" in result.quarantined[0].detail
    assert reasons(b'{"title": "no text"}\n', key="raw/a/x.jsonl") == ["missing_required_columns"]


def test_reason_rating_out_of_range() -> None:
    assert reasons(b"text,rating\nx,0\ny,6\nz,5\n") == ["rating_out_of_range", "rating_out_of_range"]


def test_reason_invalid_value() -> None:
    assert reasons(b"text,rating\nx,four\n") == ["invalid_value"]
    assert reasons(b"text,rating\nx,4.5\n") == ["invalid_value"]
    assert reasons(b"text,age\nx,-3\n") == ["invalid_value"]
    assert reasons(b"text,recommended\nx,maybe\n") == ["invalid_value"]
    assert reasons(b'{"text": {"nested": 1}}\n', key="raw/a/x.jsonl") == ["invalid_value"]


def test_reason_oversized_field() -> None:
    data = ("text,rating\n" + "x" * 101 + ",5\nshort,5\n").encode()
    assert reasons(data, limits=ParseLimits(max_field_chars=100)) == ["oversized_field"]


def test_reason_unparsable_line() -> None:
    assert reasons(b'{"text": "ok"}\nnot json\n[1, 2]\n', key="raw/a/x.jsonl") == [
        "unparsable_line",
        "unparsable_line",
    ]
    assert reasons(b"text,rating\na,5,extra\n") == ["unparsable_line"]


def test_reason_unreadable_file() -> None:
    assert reasons(b"\x1f\x8b\x08\x00garbage", key="raw/a/x.csv.gz") == ["unreadable_file"]
    assert reasons(b"", key="raw/a/x.csv") == ["unreadable_file"]
    assert reasons(b'{"text": "unterminated', key="raw/a/x.json") == ["unreadable_file"]
    record = parse(b"", key="raw/a/x.csv").quarantined[0]
    assert record.record_number == 0


def test_json_nested_past_the_recursion_limit_is_quarantined_not_raised() -> None:
    deep = b"[" * 100_000
    assert reasons(deep, key="raw/a/x.json") == ["unreadable_file"]
    assert reasons(b'{"text": "fine"}\n' + deep + b"\n", key="raw/a/x.jsonl") == ["unparsable_line"]


def test_reason_unsupported_format() -> None:
    assert reasons(b"PK\x03\x04\x00\x00binary", key="raw/a/x.xlsx") == ["unsupported_format"]


def test_mixed_file_keeps_every_good_row_and_quarantines_every_bad_one() -> None:
    lines = [
        "text,rating,age",
        "good one,5,30",
        ",4,30",  # missing text
        "rating too high,9,30",
        "not a number,x,30",
        "another good,1,",
        "too,many,fields,here",
        "third good,3,41",
    ]
    data = ("\n".join(lines) + "\n").encode() + b"bad \xff bytes,2,30\n"
    result = parse(data)
    assert [r.text for r in result.reviews] == ["good one", "another good", "third good"]
    assert sorted(q.reason.value for q in result.quarantined) == sorted(
        ["missing_text", "rating_out_of_range", "invalid_value", "unparsable_line", "bad_encoding"]
    )
    assert result.total_records == 8 == len(lines) - 1 + 1
    numbers = sorted(
        [r.record_number for r in result.reviews] + [q.record_number for q in result.quarantined]
    )
    assert numbers == list(range(1, 9))


def test_quoted_multiline_fields_are_one_record() -> None:
    result = parse(b'text,rating\n"line one\nline two",5\n')
    assert result.reviews[0].text == "line one\nline two"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Review Text", "review_text"), ("", ""), ("\ufeffID", "id"), (" Recommended IND ", "recommended_ind")],
)
def test_normalise_column(raw: str, expected: str) -> None:
    assert normalise_column(raw) == expected
