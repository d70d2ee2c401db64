"""The feedback parsers: every fixture accounted for once, the whole-body rules, and the record itself.

Each channel's own mapping is tested in ``test_feedback_parsers_email`` and
``test_feedback_parsers_channels``; the fixture files and ``parse`` are in ``tests/helpers/feedback``.
"""

from __future__ import annotations

import json
import random

import pytest

from chalicelib.domain.feedback import (
    Channel,
    FeedbackRecord,
    FeedbackRejection,
    RejectedFeedback,
    customer_ref_for,
    normalise_identifier,
    parse_feedback,
)
from tests.helpers.feedback import FIXTURES, NOW, SALT, parse

R = FeedbackRejection


#: fixture -> (input items, records, rejection reasons in order). Items are counted from the input:
#: one per e-mail / call transcript / body rejected whole, one per JSON array element, one per CSV row.
CASES: dict[tuple[str, str], tuple[int, int, list[FeedbackRejection]]] = {
    ("email", "plain_reply.eml"): (1, 1, []),
    ("email", "multipart_alternative.eml"): (1, 1, []),
    ("email", "html_only.eml"): (1, 1, []),
    ("email", "outlook_forward.eml"): (1, 1, []),
    ("email", "latin1_quoted_printable.eml"): (1, 1, []),
    ("email", "with_pii.eml"): (1, 1, []),
    ("email", "empty.eml"): (1, 0, [R.EMPTY_BODY]),
    ("email", "broken_boundary.eml"): (1, 0, [R.BROKEN_MIME]),
    ("email", "no_boundary.eml"): (1, 0, [R.BROKEN_MIME]),
    ("email", "truncated_multipart.eml"): (1, 0, [R.BROKEN_MIME]),
    ("email", "no_headers.eml"): (1, 0, [R.BROKEN_MIME]),
    ("email", "bad_base64.eml"): (1, 0, [R.BROKEN_MIME]),
    ("email", "not_utf8.eml"): (1, 0, [R.NOT_UTF8]),
    ("email", "unknown_charset.eml"): (1, 0, [R.BAD_CHARSET]),
    ("email", "no_from.eml"): (1, 0, [R.MISSING_FIELD]),
    ("email", "quoted_only.eml"): (1, 0, [R.NO_CUSTOMER_TEXT]),
    ("email", "attachment_only.eml"): (1, 0, [R.NO_CUSTOMER_TEXT]),
    ("chat", "conversation.json"): (1, 1, []),
    ("chat", "conversations.json"): (2, 2, []),
    ("chat", "with_pii.json"): (1, 1, []),
    ("chat", "mixed_malformed.json"): (
        10,
        1,
        [
            R.WRONG_TYPE,  # not an object
            R.MISSING_FIELD,  # conversation_id
            R.MISSING_FIELD,  # customer_id
            R.WRONG_TYPE,  # turns is a string
            R.NO_CUSTOMER_TEXT,  # agent and bot only
            R.MISSING_FIELD,  # turn without speaker
            R.WRONG_TYPE,  # turn text is a number
            R.WRONG_TYPE,  # conversation_id is a list
            R.MISSING_FIELD,  # no turns
        ],
    ),
    ("chat", "not_utf8.json"): (1, 0, [R.NOT_UTF8]),
    ("chat", "truncated.json"): (1, 0, [R.BAD_JSON]),
    ("chat", "scalar.json"): (1, 0, [R.WRONG_TYPE]),
    ("chat", "empty_array.json"): (1, 0, [R.EMPTY_BODY]),
    ("call", "transcript.txt"): (1, 1, []),
    ("call", "bracketed.txt"): (1, 1, []),
    ("call", "no_header.txt"): (1, 1, []),
    ("call", "with_pii.txt"): (1, 1, []),
    ("call", "unlabelled.txt"): (1, 0, [R.UNLABELLED_TRANSCRIPT]),
    ("call", "agent_only.txt"): (1, 0, [R.NO_CUSTOMER_TEXT]),
    ("call", "not_utf8.txt"): (1, 0, [R.NOT_UTF8]),
    ("app", "review.json"): (1, 1, []),
    ("app", "reviews.json"): (3, 3, []),
    ("app", "with_pii.json"): (2, 2, []),
    ("app", "mixed_malformed.json"): (
        11,
        1,
        [
            R.INVALID_VALUE,  # 7 stars
            R.WRONG_TYPE,  # "five"
            R.MISSING_FIELD,  # no body
            R.EMPTY_TEXT,  # blank body
            R.MISSING_FIELD,  # no user_id
            R.WRONG_TYPE,  # boolean rating
            R.WRONG_TYPE,  # body is an object
            R.MISSING_FIELD,  # no product_id
            R.WRONG_TYPE,  # 3.5 stars
            R.WRONG_TYPE,  # a number, not an object
        ],
    ),
    ("app", "truncated.json"): (1, 0, [R.BAD_JSON]),
    ("app", "not_utf8.json"): (1, 0, [R.NOT_UTF8]),
    ("social", "post.json"): (1, 1, []),
    ("social", "posts.json"): (2, 2, []),
    ("social", "with_pii.json"): (38, 38, []),
    ("social", "mixed_malformed.json"): (
        8,
        1,
        [
            R.MISSING_FIELD,
            R.MISSING_FIELD,
            R.MISSING_FIELD,
            R.EMPTY_TEXT,
            R.WRONG_TYPE,
            R.WRONG_TYPE,
            R.WRONG_TYPE,
        ],
    ),
    ("social", "truncated.json"): (1, 0, [R.BAD_JSON]),
    ("social", "not_utf8.json"): (1, 0, [R.NOT_UTF8]),
    ("review", "reviews.csv"): (5, 5, []),
    ("review", "reviews.jsonl"): (2, 2, []),
    ("review", "with_pii.csv"): (38, 38, []),
    ("review", "malformed.csv"): (5, 1, [R.EMPTY_TEXT, R.INVALID_VALUE, R.NOT_UTF8, R.INVALID_VALUE]),
    ("review", "no_text_column.csv"): (2, 0, [R.MISSING_FIELD, R.MISSING_FIELD]),
}


def test_every_fixture_is_in_the_table() -> None:
    on_disk = {(p.parent.name, p.name) for p in FIXTURES.glob("*/*") if p.is_file()}
    assert on_disk == set(CASES)
    assert {channel for channel, _ in CASES} == {c.value for c in Channel}


@pytest.mark.parametrize(("channel", "name"), sorted(CASES))
def test_every_input_item_ends_in_exactly_one_list(channel: str, name: str) -> None:
    items, records, reasons = CASES[(channel, name)]
    result = parse(channel, name)
    assert (result.total, len(result.records), [r.reason for r in result.rejected]) == (
        items,
        records,
        reasons,
    )
    entries: list[FeedbackRecord | RejectedFeedback] = [*result.records, *result.rejected]
    assert {r.channel for r in entries} <= {channel}
    assert {r.source for r in entries} <= {f"raw/feedback/{channel}/{name}"}
    assert len({r.feedback_id for r in result.records}) == records


def test_items_count_in_json_arrays_matches_the_table() -> None:
    for (channel, name), (items, _, _) in CASES.items():
        if name.endswith(".json") and not name.startswith(("truncated", "not_utf8")):
            document = json.loads((FIXTURES / channel / name).read_bytes())
            assert (len(document) if isinstance(document, list) and document else 1) == items, name


# -- whole-body rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [c.value for c in Channel])
@pytest.mark.parametrize("body", [b"", b"   \r\n\t"])
def test_an_empty_body_is_rejected_in_every_channel(channel: str, body: bytes) -> None:
    result = parse_feedback(channel, body, source="m", received_at=NOW, salt=SALT)
    assert result.records == []
    assert result.rejected == [RejectedFeedback("m", channel, R.EMPTY_BODY, "body is empty")]


@pytest.mark.parametrize(
    ("channel", "name"), [("email", "plain_reply.eml"), ("app", "reviews.json"), ("review", "reviews.csv")]
)
def test_a_body_over_the_limit_is_rejected_before_parsing(channel: str, name: str) -> None:
    size = len((FIXTURES / channel / name).read_bytes())
    assert parse(channel, name, max_bytes=size).total == CASES[(channel, name)][0]
    result = parse(channel, name, max_bytes=size - 1)
    assert [(r.reason, r.detail) for r in result.rejected] == [
        (R.TOO_LARGE, f"body has {size} bytes (limit {size - 1})")
    ]
    assert result.records == []


def test_an_unknown_channel_is_rejected() -> None:
    result = parse_feedback("fax", b"hello", source="m", received_at=NOW, salt=SALT)
    assert [(r.channel, r.reason) for r in result.rejected] == [("fax", R.UNKNOWN_CHANNEL)]
    assert result.total == 1


def test_a_redelivered_message_gets_the_same_ids_and_another_source_other_ids() -> None:
    first = parse("app", "reviews.json", source="sqs-msg-1")
    again = parse("app", "reviews.json", source="sqs-msg-1")
    other = parse("app", "reviews.json", source="sqs-msg-2")
    assert [r.feedback_id for r in first.records] == [r.feedback_id for r in again.records]
    assert not {r.feedback_id for r in first.records} & {r.feedback_id for r in other.records}
    assert [len(r.feedback_id) for r in first.records] == [32, 32, 32]


def test_caller_errors_raise() -> None:
    with pytest.raises(ValueError, match="salt"):
        parse_feedback("app", b"{}", source="m", received_at=NOW, salt="")
    with pytest.raises(ValueError, match="UTC"):
        parse_feedback("app", b"{}", source="m", received_at="2026-11-29T12:00:00", salt=SALT)
    with pytest.raises(ValueError, match="UTC"):
        parse_feedback("app", b"{}", source="m", received_at="2026-11-29T12:00:00+01:00", salt=SALT)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_feedback("app", b"{}", source="m", received_at="yesterday", salt=SALT)


#: The lake's review parser quarantines JSON nested past the recursion limit as an unreadable file itself.
LAKE_TOO_DEEP = (
    "the file: unreadable_file: invalid JSON document: "
    "maximum recursion depth exceeded while decoding a JSON array from a unicode string"
)


@pytest.mark.parametrize(
    ("channel", "body", "reason", "detail"),
    [
        ("app", b"[" * 100_000, R.BAD_JSON, "body is JSON nested too deeply"),
        ("chat", b'{"turns": ' + b"[" * 100_000, R.BAD_JSON, "body is JSON nested too deeply"),
        ("social", b"[" * 100_000 + b"]" * 100_000, R.BAD_JSON, "body is JSON nested too deeply"),
        ("review", b"[" * 100_000, R.UNPARSABLE, LAKE_TOO_DEEP),
        ("review", b'{"text": ' + b"[" * 100_000, R.UNPARSABLE, LAKE_TOO_DEEP),
    ],
)
def test_json_nested_deeper_than_the_recursion_limit_is_rejected(
    channel: str, body: bytes, reason: FeedbackRejection, detail: str
) -> None:
    result = parse_feedback(channel, body, source="k.json", received_at=NOW, salt=SALT)
    assert [(r.reason, r.detail) for r in result.rejected] == [(reason, detail)]


@pytest.mark.parametrize(
    ("channel", "item"),
    [
        ("app", {"review_id": "\ud800", "user_id": "u", "product_id": "1", "rating": 5, "body": "ok"}),
        ("social", {"post_id": "p", "author": "@a", "text": "bad \udfff text"}),
        (
            "chat",
            {
                "conversation_id": "c",
                "customer_id": "x",
                "turns": [{"speaker": "customer", "text": "\udc80"}],
            },
        ),
    ],
)
def test_escaped_lone_surrogates_in_json_are_not_utf8(channel: str, item: dict[str, object]) -> None:
    body = json.dumps([item, item]).encode()  # json.dumps writes them as \\u escapes, as an upstream might
    result = parse_feedback(channel, body, source="k", received_at=NOW, salt=SALT)
    assert [r.reason for r in result.rejected] == [R.NOT_UTF8, R.NOT_UTF8]
    assert result.rejected[1].detail == "item 2 holds a \\u escape of a lone UTF-16 surrogate"


def test_escaped_surrogate_pairs_are_ordinary_characters_and_review_files_are_checked_too() -> None:
    post = {"post_id": "p", "author": "@a", "text": "love it \U0001f600"}
    (record,) = parse_feedback(
        "social", json.dumps(post).encode(), source="k", received_at=NOW, salt=SALT
    ).records
    assert record.text == "love it \U0001f600"
    reviews = json.dumps([{"text": "fine", "rating": 4}, {"text": "bad \ud800", "rating": 1}]).encode()
    result = parse_feedback("review", reviews, source="r.json", received_at=NOW, salt=SALT)
    assert [r.text for r in result.records] == ["fine"]
    assert [(r.reason, r.detail) for r in result.rejected] == [
        (R.NOT_UTF8, "record 2: holds a \\u escape of a lone UTF-16 surrogate")
    ]


@pytest.mark.parametrize("channel", [c.value for c in Channel])
def test_damaged_bodies_never_raise_and_always_have_an_outcome(channel: str) -> None:
    rng = random.Random(11)
    for path in sorted((FIXTURES / channel).iterdir()):
        data = path.read_bytes()
        variants = [data[:cut] for cut in range(1, len(data), max(1, len(data) // 15))]
        for _ in range(15):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 5)):
                if damaged:
                    damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            variants.append(bytes(damaged))
        for variant in variants:
            result = parse_feedback(channel, variant, source="m", received_at=NOW, salt=SALT)
            assert result.total >= 1, path.name


# -- the record itself -----------------------------------------------------------------------------------


def test_record_round_trips_through_a_dict() -> None:
    (record,) = parse("app", "review.json").records
    data = record.to_dict()
    assert set(data) == {
        "feedback_id", "channel", "received_at", "customer_ref", "product_id", "text", "title", "rating",
        "source",
    }  # fmt: skip
    assert FeedbackRecord.from_dict(json.loads(json.dumps(data))) == record


@pytest.mark.parametrize(
    ("field", "value"), [("text", None), ("rating", "5"), ("rating", True), ("title", 3), ("source", None)]
)
def test_record_from_dict_rejects_wrong_types(field: str, value: object) -> None:
    (record,) = parse("app", "review.json").records
    with pytest.raises(ValueError, match=field):
        FeedbackRecord.from_dict({**record.to_dict(), field: value})


def test_rejection_to_dict_uses_the_reason_code() -> None:
    rejection = RejectedFeedback("k", "app", R.BAD_JSON, "body is not valid JSON")
    assert rejection.to_dict() == {
        "source": "k", "channel": "app", "reason": "bad_json", "detail": "body is not valid JSON"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("identifier", "normalised"),
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("+44 (20) 7946-0958", "+442079460958"),
        ("555.123.4567", "5551234567"),
        ("@Fashion_Fan", "fashion_fan"),
        ("CUST-88213", "cust-88213"),
    ],
)
def test_identifiers_are_normalised_before_hashing(identifier: str, normalised: str) -> None:
    assert normalise_identifier(identifier) == normalised
    assert customer_ref_for(identifier, SALT) == customer_ref_for(normalised, SALT)


def test_customer_ref_is_a_salted_hash() -> None:
    ref = customer_ref_for("jane.doe@example.com", SALT)
    assert len(ref or "") == 64
    assert ref != customer_ref_for("jane.doe@example.com", "another-salt")
    assert (customer_ref_for(None, SALT), customer_ref_for("  ", SALT)) == (None, None)
