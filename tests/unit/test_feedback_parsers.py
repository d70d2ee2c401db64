"""The feedback parsers: every channel, every malformed kind, and every input item accounted for once."""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime
from pathlib import Path

import pytest

from chalicelib.domain.feedback import (
    Channel,
    FeedbackRecord,
    FeedbackRejection,
    RejectedFeedback,
    customer_ref_for,
    feedback_id_for,
    html_to_text,
    normalise_identifier,
    parse_feedback,
    strip_quotes_and_signature,
)
from chalicelib.domain.reviews import ReviewParser

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feedback"
SALT = "test-salt"
NOW = "2026-11-29T12:00:00Z"
R = FeedbackRejection


def parse(channel: str, name: str, *, source: str | None = None, max_bytes: int = 256 * 1024):  # type: ignore[no-untyped-def]
    body = (FIXTURES / channel / name).read_bytes()
    return parse_feedback(
        channel, body, source=source or f"raw/feedback/{channel}/{name}", received_at=NOW, salt=SALT,
        max_bytes=max_bytes,
    )  # fmt: skip


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
    assert {r.channel for r in [*result.records, *result.rejected]} <= {channel}
    assert {r.source for r in [*result.records, *result.rejected]} <= {f"raw/feedback/{channel}/{name}"}
    assert len({r.feedback_id for r in result.records}) == records


def test_items_count_in_json_arrays_matches_the_table() -> None:
    for (channel, name), (items, _, _) in CASES.items():
        if name.endswith(".json") and not name.startswith(("truncated", "not_utf8")):
            document = json.loads((FIXTURES / channel / name).read_bytes())
            assert (len(document) if isinstance(document, list) and document else 1) == items, name


# -- e-mail ------------------------------------------------------------------------------------------------


def test_plain_email_drops_the_quoted_reply_and_the_signature() -> None:
    (record,) = parse("email", "plain_reply.eml").records
    assert record.text == (
        "Hi,\n\nthe wrap dress arrived today and the zipper broke the first time I closed it.\n"
        "The fabric is also much thinner than in the photos. I'm really disappointed.\n\nMaria"
    )
    assert record.title == "Re: Your order 100-2345 has shipped"
    assert record.product_id == "1078"  # the X-Product-Id header
    assert record.customer_ref == customer_ref_for("m.garcia@example.net", SALT)  # address, case-folded
    assert record.rating is None
    assert record.received_at == NOW
    assert record.feedback_id == feedback_id_for(
        "email", "raw/feedback/email/plain_reply.eml", "id:<CAF+reply-8841@mail.example.net>"
    )


def test_multipart_email_takes_the_plain_part_and_drops_sent_from_my_iphone() -> None:
    (record,) = parse("email", "multipart_alternative.eml").records
    assert (
        record.text
        == "Just wanted to say the jeans fit perfectly \u2013 best I have owned.\nSize 32x34 was spot on."
    )
    assert record.product_id == "862"  # "product #862" in the subject
    assert record.customer_ref == customer_ref_for("tom.becker@example.org", SALT)


def test_html_only_email_is_stripped_of_tags_quotes_scripts_and_styles() -> None:
    (record,) = parse("email", "html_only.eml").records
    assert record.text == (
        "I returned the blazer (item no. 1094) three weeks ago & I still have no refund.\n\n"
        "Nobody answers the phone.\nPlease sort this out."
    )
    assert record.product_id == "1094"  # "item no. 1094" in the body


def test_outlook_reply_block_and_get_outlook_line_are_dropped() -> None:
    (record,) = parse("email", "outlook_forward.eml").records
    assert record.text == (
        "Second time the courier left the parcel in the rain. The box was soaked and the sweater smells."
    )
    assert record.product_id is None


def test_declared_latin1_with_quoted_printable_is_decoded_and_original_message_dropped() -> None:
    (record,) = parse("email", "latin1_quoted_printable.eml").records
    assert (record.title, record.text) == ("Très déçue", "La robe est arrivée déchirée. Très déçue.")


def test_email_without_message_id_falls_back_to_its_position() -> None:
    body = b"From: a@example.com\nSubject: hi\n\nThe hat is too small.\n"
    (record,) = parse_feedback("email", body, source="m-1", received_at=NOW, salt=SALT).records
    assert record.feedback_id == feedback_id_for("email", "m-1", "#1")


def test_invalid_bytes_in_headers_are_replaced_not_raised() -> None:
    body = b"From: J\xf6rg <j\xf6rg@example.de>\nSubject: caf\xe9 \xc3\xa9\n\nThe coat is lovely.\n"
    (record,) = parse_feedback("email", body, source="m-2", received_at=NOW, salt=SALT).records
    assert record.title == "caf\ufffd é"
    assert record.customer_ref == customer_ref_for("j\ufffdrg@example.de", SALT)


@pytest.mark.parametrize(
    "sender",
    [b"a@", b"a:X;lex@example.com", b"Kevin O'Neill Zkevin@example.co.uk>\nMessage-ID: <a@[ab.example>"],
)
def test_headers_that_crash_the_stdlib_header_parser_are_broken_mime(sender: bytes) -> None:
    body = b"From: " + sender + b"\nSubject: x\n\nThe scarf is lovely.\n"
    result = parse_feedback("email", body, source="m", received_at=NOW, salt=SALT)
    assert [r.reason for r in result.rejected] == [R.BROKEN_MIME]
    assert result.rejected[0].detail.startswith("a header cannot be parsed (")


def test_multiparts_nested_thousands_deep_are_broken_mime() -> None:
    depth = 1000
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth)
    )
    closing = b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
    body = (
        b"From: a@example.com\nMIME-Version: 1.0\n" + nested + b"Content-Type: text/plain\n\nhi\n" + closing
    )
    result = parse_feedback("email", body, source="m", received_at=NOW, salt=SALT)
    assert [(r.reason, r.detail) for r in result.rejected] == [
        (R.BROKEN_MIME, "MIME parts are nested too deeply")
    ]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Broken.\n> quoted line\nStill broken.", "Broken.\nStill broken."),
        ("Broken.\nOn Mon, 2 Nov 2026 at 10:00, Shop <s@shop.example>\nwrote:\n> hi", "Broken."),
        ("Broken.\n-----Original Message-----\nFrom: shop", "Broken."),
        ("Broken.\nBegin forwarded message:\nFrom: shop", "Broken."),
        ("Broken.\n--\nJane", "Broken."),
        ("Broken.\nSent from my Galaxy", "Broken."),
        ("Broken.\nOn the other hand it was cheap.", "Broken.\nOn the other hand it was cheap."),
    ],
)
def test_quote_and_signature_rules(text: str, kept: str) -> None:
    assert strip_quotes_and_signature(text) == kept


def test_html_to_text_keeps_blocks_as_lines() -> None:
    assert (
        html_to_text("<p>One&nbsp;two</p><ul><li>three</li><li>four</li></ul>") == "One two\n\nthree\n\nfour"
    )


# -- chat, call, app, social ---------------------------------------------------------------------------------


def test_chat_keeps_only_the_customers_turns() -> None:
    (record,) = parse("chat", "conversation.json").records
    assert record.text == (
        "My order arrived but the dress has a hole in the seam.\n"
        "Sent it. Honestly this is the second faulty item this month."
    )
    assert (record.product_id, record.title, record.rating) == ("1078", None, None)
    assert record.customer_ref == customer_ref_for("CUST-88213", SALT)
    assert record.feedback_id == feedback_id_for(
        "chat", "raw/feedback/chat/conversation.json", "id:chat-20261127-0042"
    )


def test_chat_array_gives_one_record_per_conversation_with_integer_ids_as_text() -> None:
    first, second = parse("chat", "conversations.json").records
    assert first.text == "Do you have the cardigan in size M?\nGreat, thanks, super quick answer!"
    assert first.customer_ref == customer_ref_for("lena_k", SALT)  # "@lena_k" normalised
    assert (second.product_id, second.text) == ("1094", "The blazer lining ripped after two wears.")
    assert second.feedback_id == feedback_id_for("chat", "raw/feedback/chat/conversations.json", "id:90312")


def test_call_transcript_keeps_customer_turns_with_their_continuation_lines() -> None:
    (record,) = parse("call", "transcript.txt").records
    assert record.text == (
        "Hi, I ordered the wrap dress two weeks ago and it still hasn't arrived.\n"
        'It\'s 100-2345. The tracking page has said "in transit" for nine days now.\n'
        "OK. I'm pretty annoyed, to be honest.\n"
        "No, that's all."
    )
    assert (record.product_id, record.customer_ref) == ("1078", customer_ref_for("CUST-55102", SALT))
    assert record.feedback_id == feedback_id_for(
        "call", "raw/feedback/call/transcript.txt", "id:CC-2026-11-28-00917"
    )


def test_call_transcript_with_bracketed_upper_case_and_timestamped_labels() -> None:
    (record,) = parse("call", "bracketed.txt").records
    assert record.text == (
        "Morning. The boots I bought are fantastic, I just wanted to say thanks.\n"
        "And the delivery was a day early.\nBye now."
    )
    assert record.customer_ref == customer_ref_for("+442079460000", SALT)  # phone: + and digits only


def test_call_without_headers_uses_its_position_and_has_no_customer() -> None:
    (record,) = parse("call", "no_header.txt").records
    assert (record.customer_ref, record.product_id) == (None, None)
    assert record.text == "The jumper shrank in the first wash, I followed the label."
    assert record.feedback_id == feedback_id_for("call", "raw/feedback/call/no_header.txt", "#1")


def test_app_reviews_carry_rating_title_and_product() -> None:
    records = parse("app", "reviews.json").records
    assert [(r.rating, r.title, r.product_id) for r in records] == [
        (5, "Great jeans", "862"),
        (3, None, "1094"),
        (2, None, "1078"),  # rating "2" as a string is accepted; an empty title is no title
    ]
    assert records[1].customer_ref == customer_ref_for("1002", SALT)
    (single,) = parse("app", "review.json").records
    assert (single.rating, single.title) == (1, "App crashes at checkout")


def test_social_post_hashes_the_handle_without_at_and_case() -> None:
    (record,) = parse("social", "post.json").records
    assert record.customer_ref == customer_ref_for("fashion_fan_92", SALT)
    assert record.product_id == "1094"
    assert record.text.startswith("Three weeks and still no refund from @ShopExample")


# -- product reviews: the lake's own parser -----------------------------------------------------------------


def test_review_files_go_through_the_lake_parser_and_map_one_to_one() -> None:
    body = (FIXTURES / "review" / "reviews.csv").read_bytes()
    lake = ReviewParser().parse(
        body, source_key="raw/reviews/r.csv", channel="review", ingested_at=datetime.fromisoformat(NOW)
    )
    result = parse_feedback("review", body, source="raw/reviews/r.csv", received_at=NOW, salt=SALT)
    assert [(r.text, r.title, r.rating, r.product_id) for r in result.records] == [
        (v.text, v.title, v.rating, v.product_id) for v in lake.reviews
    ]
    assert [r.feedback_id for r in result.records] == [
        feedback_id_for("review", "raw/reviews/r.csv", v.review_id) for v in lake.reviews
    ]
    assert {r.customer_ref for r in result.records} == {None}


def test_review_quarantine_reasons_are_kept_in_the_detail() -> None:
    rejected = parse("review", "malformed.csv").rejected
    assert [r.detail for r in rejected] == [
        "record 2: missing_text: review text is empty",
        "record 3: rating_out_of_range: rating 9 is outside 1..5",
        "record 4: bad_encoding: text is not valid UTF-8",
        "record 5: invalid_value: rating is not a number: 'five'",
    ]


def test_a_gzipped_review_file_is_bounded_by_its_decompressed_size() -> None:
    body = gzip.compress(b"Review Text,Rating\n" + b"lovely,5\n" * 2000)
    assert parse_feedback("review", body, source="k.csv.gz", received_at=NOW, salt=SALT).total == 2000
    small = parse_feedback("review", body, source="k.csv.gz", received_at=NOW, salt=SALT, max_bytes=4096)
    assert [r.reason for r in small.rejected] == [R.TOO_LARGE]
    assert small.rejected[0].detail.startswith("the file: object_too_large: decompressed size exceeds")


def test_a_review_file_with_a_header_and_no_rows_still_has_an_outcome() -> None:
    result = parse_feedback("review", b"Review Text,Rating\n", source="k", received_at=NOW, salt=SALT)
    assert [(r.reason, r.detail) for r in result.rejected] == [(R.EMPTY_BODY, "no records")]


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


@pytest.mark.parametrize(
    ("channel", "body", "reason", "detail"),
    [
        ("app", b"[" * 100_000, R.BAD_JSON, "body is JSON nested too deeply"),
        ("chat", b'{"turns": ' + b"[" * 100_000, R.BAD_JSON, "body is JSON nested too deeply"),
        ("social", b"[" * 100_000 + b"]" * 100_000, R.BAD_JSON, "body is JSON nested too deeply"),
        ("review", b"[" * 100_000, R.UNPARSABLE, "the file: JSON nested too deeply"),
        ("review", b'{"text": ' + b"[" * 100_000, R.UNPARSABLE, "the file: JSON nested too deeply"),
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
