"""PII masking: every kind found and masked, checksums keep ordinary numbers, no original survives parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.domain.feedback import Channel, feedback_id_for, parse_feedback
from chalicelib.domain.pii import PiiKind, PiiMatch, find_pii, iban_is_valid, luhn_is_valid, mask_pii

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feedback"
CORPUS: list[dict[str, str]] = json.loads((FIXTURES / "pii_corpus.json").read_text())
PII_FIXTURES = {
    Channel.EMAIL: "email/with_pii.eml",
    Channel.CHAT: "chat/with_pii.json",
    Channel.CALL: "call/with_pii.txt",
    Channel.APP: "app/with_pii.json",
    Channel.SOCIAL: "social/with_pii.json",
    Channel.REVIEW: "review/with_pii.csv",
}


def test_the_corpus_has_every_kind_and_at_least_thirty_variants() -> None:
    kinds = [item["kind"] for item in CORPUS]
    assert {kind: kinds.count(kind) for kind in PiiKind} == {"email": 6, "phone": 15, "card": 8, "iban": 9}
    values = [item["value"] for item in CORPUS]
    assert len(set(values)) == len(values) == 38
    # No value contains another, so "absent from the output" cannot pass by masking only the larger one.
    assert [(a, b) for a in values for b in values if a != b and a in b] == []


@pytest.mark.parametrize(
    "context", ["{}", "Please contact {} today.", "x: {}, thanks", "({})", "{}\nnext line"]
)
@pytest.mark.parametrize("item", CORPUS, ids=[item["value"] for item in CORPUS])
def test_every_corpus_value_is_found_whole_and_masked(item: dict[str, str], context: str) -> None:
    text = context.format(item["value"])
    start = text.index(item["value"])
    assert find_pii(text) == [PiiMatch(PiiKind(item["kind"]), (start, start + len(item["value"])))]
    assert mask_pii(text) == context.format(f"[{item['kind'].upper()}]")


@pytest.mark.parametrize(
    "text",
    [
        "size 10-12",
        "waist 28-30, length 32",
        "32x34",
        "Order #123456789",
        "order no. 100-200-300",
        "order 1234567812345678",  # 16 digits that fail Luhn: an order number, not a card
        "item 4111 1111 1111 1112",  # a card number with a wrong check digit
        "EAN 4006381333931",
        "tracking 1Z999AA10123456784",
        "Reference 12345-67890",
        "ticket 20260115-0042",
        "2026-01-15",
        "15/01/2026",
        "01.02.2026",
        "Jan 5, 2026 at 10:45",
        "call me on 2026-01-15",
        "call me in 2 days",
        "$1,299.99",
        "€ 45,00",
        "£19.99",
        "2,000,000",
        "I bought 3 for 59.99 on 12/03/2025",
        "10:30",
        "from 9am-5pm",
        "1-2 weeks",
        "2019-2021",
        "90210",
        "ISBN 978-3-16-148410-0",
        "v2.3.1",
        "192.168.1.1",
        "product 1078",
        "SKU 1234-5678",
        "model XJ-2000-B",
        "2 x 1000 mAh",
        "rated 5/5",
        "GB82 WEST 1234 5698 7654 33",  # IBAN with wrong check digits
        "GB82 WEST 1234 5698 7654 3",  # one character short for GB
        "NL91ABNA0417164301",
        "Call-Id: 88231",
        "between 10-12 and 14-16",
    ],
)
def test_ordinary_numbers_survive(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_an_iban_with_a_wrong_check_is_not_masked_as_an_iban() -> None:
    assert [kind for kind, _ in find_pii("DE88 3704 0044 0532 0130 00")] == [PiiKind.PHONE]  # 0044 ... shape
    assert [kind for kind, _ in find_pii("DE89 3704 0044 0532 0130 00")] == [PiiKind.IBAN]


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),
        ("79927398713", True),
        ("79927398710", False),
        ("", False),
        ("4111-1111", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_is_valid(digits) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("gb82west12345698765432", True),
        ("GB82 WEST 1234 5698 7654 33", False),
        ("GB82 WEST 1234 5698 7654 321", False),  # GB IBANs have 22 characters
        ("DE89370400440532013000", True),
        ("XX89370400440532013000", False),
        ("DE89 3704 0044 0532 0130 0!", False),
    ],
)
def test_iban_mod_97(iban: str, valid: bool) -> None:
    assert iban_is_valid(iban) is valid


def test_findings_are_ordered_and_never_overlap() -> None:
    text = (
        "Mail jane@example.com, card 4111 1111 1111 1111, call (555) 123-4567 ext 12 "
        "or +44 20 7946 0958; IBAN DE89 3704 0044 0532 0130 00 AND thanks"
    )
    assert [(kind, text[start:end]) for kind, (start, end) in find_pii(text)] == [
        (PiiKind.EMAIL, "jane@example.com"),
        (PiiKind.CARD, "4111 1111 1111 1111"),
        (PiiKind.PHONE, "(555) 123-4567 ext 12"),
        (PiiKind.PHONE, "+44 20 7946 0958"),
        (PiiKind.IBAN, "DE89 3704 0044 0532 0130 00"),
    ]
    assert mask_pii(text) == "Mail [EMAIL], card [CARD], call [PHONE] or [PHONE]; IBAN [IBAN] AND thanks"


def test_a_card_inside_a_longer_run_of_digit_groups_is_found() -> None:
    assert mask_pii("qty 2 4111 1111 1111 1111 2 pcs") == "qty 2 [CARD] 2 pcs"


def test_digits_in_groups_shorter_than_three_are_not_a_card() -> None:
    assert luhn_is_valid("4111111111111111") is True
    assert mask_pii("steps 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1") == "steps 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"
    assert mask_pii("4111 111 111 111 111") == "[CARD]"


def test_a_bare_digit_run_is_a_phone_only_after_a_phone_word() -> None:
    assert mask_pii("text me at 5551234567") == "text me at [PHONE]"
    assert mask_pii("phone: 7700 900 123") == "phone: [PHONE]"
    assert mask_pii("invoice 5551234567") == "invoice 5551234567"


#: Placeholders per channel in everything parsed from its fixture: [EMAIL], [PHONE], [CARD], [IBAN].
#: The corpus has 6, 15, 8, 9; titles add more (e-mail subject: card + phone; app titles: phone, IBAN;
#: review titles: a phone in every fifth row).
PLACEHOLDER_COUNTS = {
    Channel.EMAIL: (6, 16, 9, 9),
    Channel.CHAT: (6, 15, 8, 9),
    Channel.CALL: (6, 15, 8, 9),
    Channel.APP: (6, 16, 8, 10),
    Channel.SOCIAL: (6, 15, 8, 9),
    Channel.REVIEW: (6, 23, 8, 9),
}


@pytest.mark.parametrize("channel", list(PII_FIXTURES))
def test_no_corpus_original_survives_parsing_in_any_channel(channel: Channel) -> None:
    body = (FIXTURES / PII_FIXTURES[channel]).read_bytes()
    originals = [item["value"] for item in CORPUS]
    assert [value for value in originals if value not in body.decode("utf-8")] == []  # all embedded
    result = parse_feedback(
        channel, body, source="raw/feedback/pii", received_at="2026-11-29T12:00:00Z", salt="s"
    )
    written = json.dumps(
        [r.to_dict() for r in result.records] + [r.to_dict() for r in result.rejected], ensure_ascii=False
    )
    assert (result.rejected, [value for value in originals if value in written]) == ([], [])
    counts = tuple(written.count(p) for p in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]"))
    assert counts == PLACEHOLDER_COUNTS[channel]


def test_email_record_masks_the_subject_and_counts_each_kind_exactly() -> None:
    body = (FIXTURES / PII_FIXTURES[Channel.EMAIL]).read_bytes()
    (record,) = parse_feedback(
        "email", body, source="k", received_at="2026-11-29T12:00:00Z", salt="s"
    ).records
    assert record.title == "Card [CARD] charged twice, call [PHONE]"
    assert [record.text.count(p) for p in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]")] == [6, 15, 8, 9]


def test_rejection_details_are_masked_too() -> None:
    body = b"Review Text,Rating\nlovely,jane.doe@example.com\n"
    result = parse_feedback("review", body, source="k", received_at="2026-11-29T12:00:00Z", salt="s")
    assert [r.detail for r in result.rejected] == [
        "record 1: invalid_value: rating is not a number: '[EMAIL]'"
    ]


def test_a_product_id_holding_personal_data_is_dropped() -> None:
    body = json.dumps(
        {"post_id": "p", "author": "@a", "text": "nice", "product_id": "jane.doe@example.com"}
    ).encode()
    (record,) = parse_feedback(
        "social", body, source="k", received_at="2026-11-29T12:00:00Z", salt="s"
    ).records
    assert record.product_id is None


def test_a_source_holding_pii_is_masked_and_the_feedback_id_still_comes_from_the_original() -> None:
    """A sender's message id or an upload's file name is stored and alerted with the record."""
    body = json.dumps({"post_id": "p-1", "author": "@sam", "text": "late again"}).encode()
    leaky = "msg:ticket for jane.doe@example.com"
    masked = parse_feedback("social", body, source=leaky, received_at="2026-11-29T12:00:00Z", salt="s")
    plain = parse_feedback("social", body, source="msg:other", received_at="2026-11-29T12:00:00Z", salt="s")
    (record,) = masked.records
    assert record.source == "msg:ticket for [EMAIL]"
    assert record.feedback_id == feedback_id_for("social", leaky, "id:p-1") != plain.records[0].feedback_id
    rejected = parse_feedback("social", b"{", source=leaky, received_at="2026-11-29T12:00:00Z", salt="s")
    assert [r.source for r in rejected.rejected] == ["msg:ticket for [EMAIL]"]
