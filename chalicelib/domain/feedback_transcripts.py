"""Chat and call-centre transcripts: only the customer's turns become the record's text.

- Chat: a JSON conversation (or an array of them) with ``conversation_id``, ``customer_id``, optional
  ``product_id`` and ``turns`` of ``{"speaker", "text"}``; the customer's turns are joined by newlines.
- Call: plain text, optional ``Call-ID`` / ``Customer-ID`` / ``Product-ID`` header lines, then turns
  opened by a speaker label (``Customer:``, ``[AGENT]``, ``[00:12] Caller:`` ...); a line without a
  label continues the turn before it. A transcript with no speaker labels at all is
  ``unlabelled_transcript``.
- Either way, no customer text left is ``no_customer_text``.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.domain.feedback_json import id_field, object_items
from chalicelib.domain.feedback_record import (
    FeedbackRejection,
    ItemRejectedError,
    ItemResult,
    ParsedItem,
    utf8_text,
)

# -- chat transcripts --------------------------------------------------------------------------------------


def _chat_item(obj: Mapping[str, Any], position: int) -> ParsedItem:
    conversation_id = id_field(obj, "conversation_id", required=True)
    customer = id_field(obj, "customer_id", required=True)
    turns = obj.get("turns")
    if turns is None:
        raise ItemRejectedError(FeedbackRejection.MISSING_FIELD, "turns is missing")
    if not isinstance(turns, list):
        raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, "turns must be a list")
    said: list[str] = []
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"turn {number} is not a JSON object")
        speaker = turn.get("speaker")
        if speaker is None:
            raise ItemRejectedError(FeedbackRejection.MISSING_FIELD, f"turn {number} has no speaker")
        if not isinstance(speaker, str):
            raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"turn {number} speaker must be a string")
        text = turn.get("text")
        if text is not None and not isinstance(text, str):
            raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"turn {number} text must be a string")
        if speaker.strip().casefold() == "customer" and text and text.strip():
            said.append(text.strip())
    if not said:
        raise ItemRejectedError(
            FeedbackRejection.NO_CUSTOMER_TEXT, "the customer said nothing in this conversation"
        )
    return ParsedItem(
        item_key=f"id:{conversation_id}",
        customer=customer,
        product_id=id_field(obj, "product_id", required=False),
        text="\n".join(said),
    )


def parse_chat(body: bytes) -> Iterator[ItemResult]:
    return object_items(body, "chat transcript", _chat_item)


# -- call-centre transcripts -------------------------------------------------------------------------------

_CALL_HEADERS = {"call-id": "call_id", "customer-id": "customer_id", "product-id": "product_id"}
_HEADER_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z-]{1,30})\s*:\s*(.*?)\s*$")
_CUSTOMER_SPEAKERS = {"customer", "caller", "client"}
_OTHER_SPEAKERS = {
    "agent",
    "representative",
    "rep",
    "advisor",
    "operator",
    "ivr",
    "system",
    "bot",
    "supervisor",
}
_TIMESTAMP = r"(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?\)?\]?\s*)?"
_SPEAKER_LINE = re.compile(
    rf"^\s*{_TIMESTAMP}(?:\[(?P<bracketed>[A-Za-z ]{{2,30}})\]\s*:?|(?P<plain>[A-Za-z ]{{2,30}}?)\s*:)"
    r"\s*(?P<text>.*)$"
)


def _speaker(line: str) -> tuple[bool, str] | None:
    """``(is_customer, text)`` when the line opens a turn of a known speaker, else ``None``."""
    match = _SPEAKER_LINE.match(line)
    if match is None:
        return None
    name = (match["bracketed"] or match["plain"] or "").strip().casefold()
    if name in _CUSTOMER_SPEAKERS:
        return True, match["text"].strip()
    if name in _OTHER_SPEAKERS:
        return False, match["text"].strip()
    return None


def parse_call(body: bytes) -> Iterator[ItemResult]:
    headers: dict[str, str] = {}
    said: list[str] = []
    labelled = False
    customer_speaking = False
    for line in utf8_text(body).splitlines():
        turn = _speaker(line)
        if turn is not None:
            labelled = True
            customer_speaking, text = turn
            if customer_speaking and text:
                said.append(text)
            continue
        header = _HEADER_LINE.match(line)
        if not labelled and header is not None and header[1].casefold() in _CALL_HEADERS:
            if header[2]:
                headers[_CALL_HEADERS[header[1].casefold()]] = header[2]
            continue
        if labelled and customer_speaking and line.strip():
            said[-1:] = [f"{said[-1]} {line.strip()}" if said else line.strip()]
    if not labelled:
        raise ItemRejectedError(
            FeedbackRejection.UNLABELLED_TRANSCRIPT, "the transcript has no speaker labels"
        )
    if not said:
        raise ItemRejectedError(FeedbackRejection.NO_CUSTOMER_TEXT, "the customer said nothing in this call")
    call_id = headers.get("call_id")
    yield ParsedItem(
        item_key=f"id:{call_id}" if call_id else "#1",
        customer=headers.get("customer_id"),
        product_id=headers.get("product_id"),
        text="\n".join(said),
    )
