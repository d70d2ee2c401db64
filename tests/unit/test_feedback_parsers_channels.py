"""The chat, call, app, social and product-review parsers: which fields and turns become the record."""

from __future__ import annotations

import gzip
from datetime import datetime

from chalicelib.domain.feedback import FeedbackRejection, customer_ref_for, feedback_id_for, parse_feedback
from chalicelib.domain.reviews import ReviewParser
from tests.helpers.feedback import FIXTURES, NOW, SALT, parse

R = FeedbackRejection


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
