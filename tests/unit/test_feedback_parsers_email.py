"""The e-mail parser: which part is read, what quotes and signatures are dropped, and broken MIME."""

from __future__ import annotations

import pytest

from chalicelib.domain.feedback import (
    FeedbackRejection,
    customer_ref_for,
    feedback_id_for,
    html_to_text,
    parse_feedback,
    strip_quotes_and_signature,
)
from tests.helpers.feedback import NOW, SALT, parse

R = FeedbackRejection


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
