"""The one canonical feedback record, and one parser per channel that turns raw bytes into it.

Feedback reaches the fan-in Lambda from six channels in six shapes; everything after the fan-in
(scoring, storage, alerts, human review) sees only ``FeedbackRecord``. ``parse_feedback`` takes the
bytes of one S3 object or queue message and returns every item either as a record or as a
``RejectedFeedback`` with a machine-readable reason, never an exception: input items = records +
rejected. PII never leaves this module in clear: text and title are masked (``pii.mask_pii``), the
customer identifier is kept only as a salted hash, and rejection details never quote input values.

Decisions (documented here because the fan-in and its tests rely on them):

- ``feedback_id`` is the first 32 hex characters of sha256 over channel, source and the item's own id
  (or its 1-based position when it has none), so a redelivered message gets the same id.
- ``customer_ref`` is sha256 over the salt and the normalised identifier (case-folded; an e-mail
  address is its address part; a phone number keeps ``+`` and digits; a handle loses its ``@``).
- A body over ``max_bytes`` is rejected as ``too_large`` before any parsing; an empty (blank) body,
  an empty JSON array or a review file with a header and no rows is ``empty_body``. A body that holds
  several items and is rejected whole counts as one item, so every body yields at least one entry.
- Encoding: chat, call, app and social bodies must be UTF-8 (a BOM is allowed); anything else is
  ``not_utf8``, never guessed. An e-mail part is decoded strictly in its declared charset (UTF-8 when
  it declares none, as modern clients send); invalid bytes are ``not_utf8`` for UTF-8/ASCII parts and
  ``bad_charset`` for other or unknown charsets. Raw 8-bit bytes in e-mail headers are decoded
  leniently (invalid ones become U+FFFD), as the stdlib parser does. Product-review files keep the
  ingest parser's rule (bad bytes quarantine only the record that holds them). A JSON ``\\ud800``
  escape of a lone surrogate (which no later UTF-8 writer could encode) makes its item ``not_utf8``.
- Bodies that crash the standard library (JSON or MIME nested past the recursion limit; damaged
  headers on which the stdlib header parser raises instead of recording a defect) are ``bad_json`` /
  ``broken_mime`` (``unparsable`` for review files), never an exception.
- E-mail: the text/plain part, else the text/html part with tags stripped (``<blockquote>``, script
  and style dropped). Quoted replies (lines starting with ``>``; everything from an ``On ... wrote:``
  line, ``-----Original Message-----``, an Outlook ``From:``/``Sent:`` block or ``Begin forwarded
  message:``) and signatures (from a ``-- `` line, or a ``Sent from my ...`` / ``Get Outlook for ...``
  line) are dropped. Title = Subject; customer = the From address (required); product id = the
  ``X-Product-Id`` header, else the first ``product #1234`` / ``product id: 1234`` / ``item no. 1234``
  (digits only) in the subject, then the kept body text. MIME structure defects (no header block,
  missing or unterminated multipart boundaries, corrupt base64) make the message ``broken_mime``.
- Chat and call: only the customer's turns are kept, joined by newlines; none left is
  ``no_customer_text``. A call transcript with no speaker labels at all is ``unlabelled_transcript``.
- Product reviews: the lake's own ``ReviewParser`` parses them (one parser for the format); its
  quarantine reasons map onto ``FeedbackRejection`` with the original reason kept in the detail.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email import errors as email_errors
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from enum import StrEnum
from html.parser import HTMLParser
from typing import Any

from chalicelib.domain.pii import mask_pii
from chalicelib.domain.reviews import QuarantinedRecord, QuarantineReason, Review, ReviewParser


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    CALL = "call"
    APP = "app"
    SOCIAL = "social"
    REVIEW = "review"


class FeedbackRejection(StrEnum):
    """Why an item (or a whole body) did not become a ``FeedbackRecord``."""

    EMPTY_BODY = "empty_body"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    BAD_CHARSET = "bad_charset"
    BROKEN_MIME = "broken_mime"
    BAD_JSON = "bad_json"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    EMPTY_TEXT = "empty_text"
    INVALID_VALUE = "invalid_value"
    NO_CUSTOMER_TEXT = "no_customer_text"
    UNLABELLED_TRANSCRIPT = "unlabelled_transcript"
    UNKNOWN_CHANNEL = "unknown_channel"
    UNPARSABLE = "unparsable"
    UNSUPPORTED_FORMAT = "unsupported_format"


@dataclass(frozen=True)
class FeedbackRecord:
    """One piece of customer feedback in the canonical shape every later step sees."""

    feedback_id: str
    channel: str
    received_at: str
    customer_ref: str | None
    product_id: str | None
    text: str
    title: str | None
    rating: int | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackRecord:
        """The inverse of ``to_dict``; ``ValueError`` on a missing field or a value of the wrong type."""

        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise ValueError(f"feedback record field {name} must be a string")
            return value

        def optional_text(name: str) -> str | None:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"feedback record field {name} must be a string or null")
            return value

        rating = data.get("rating")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)):
            raise ValueError("feedback record field rating must be an integer or null")
        return cls(
            feedback_id=text("feedback_id"),
            channel=text("channel"),
            received_at=text("received_at"),
            customer_ref=optional_text("customer_ref"),
            product_id=optional_text("product_id"),
            text=text("text"),
            title=optional_text("title"),
            rating=rating,
            source=text("source"),
        )


@dataclass(frozen=True)
class RejectedFeedback:
    """One item (or whole body) that was kept out, with a machine-readable reason and a PII-free detail."""

    source: str
    channel: str
    reason: FeedbackRejection
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "channel": self.channel,
            "reason": self.reason.value,
            "detail": self.detail,
        }


@dataclass
class FeedbackParse:
    """What one body produced: every input item is in exactly one of the two lists."""

    records: list[FeedbackRecord] = field(default_factory=list)
    rejected: list[RejectedFeedback] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.records) + len(self.rejected)


DEFAULT_MAX_BYTES = 256 * 1024


def feedback_id_for(channel: str, source: str, item_key: str) -> str:
    """Deterministic id: the same channel, source and item always give the same 32 hex characters."""
    digest = hashlib.sha256("\x1f".join((channel, source, item_key)).encode("utf-8"))
    return digest.hexdigest()[:32]


_PHONE_LIKE = re.compile(r"\+?[\d\s().-]{7,}")


def normalise_identifier(identifier: str) -> str:
    """The form of a customer identifier that is hashed: same person, same form."""
    value = identifier.strip()
    if "@" in value[1:] and not value.startswith("@"):
        return value.casefold()  # e-mail address
    if _PHONE_LIKE.fullmatch(value):
        return ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)
    return value.lstrip("@").casefold()


def customer_ref_for(identifier: str | None, salt: str) -> str | None:
    """Salted sha256 of the normalised identifier (64 hex characters); ``None`` without one."""
    if identifier is None or not identifier.strip():
        return None
    return hashlib.sha256(f"{salt}\x1f{normalise_identifier(identifier)}".encode()).hexdigest()


class _RejectError(Exception):
    def __init__(self, reason: FeedbackRejection, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Item:
    """What a channel parser extracted from one item, before ids, hashing and masking."""

    item_key: str
    customer: str | None
    product_id: str | None
    text: str
    title: str | None = None
    rating: int | None = None


_ItemResult = _Item | _RejectError


def parse_feedback(
    channel: str,
    body: bytes,
    *,
    source: str,
    received_at: str,
    salt: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FeedbackParse:
    """Parse the bytes of one object or message of ``channel`` into records and rejections.

    Malformed input never raises. ``ValueError`` is raised only for a caller error: an empty salt or
    a ``received_at`` that is not an ISO 8601 UTC timestamp.
    """
    if not salt:
        raise ValueError("customer references need a non-empty salt")
    _check_received_at(received_at)
    result = FeedbackParse()

    def reject(reason: FeedbackRejection, detail: str) -> FeedbackParse:
        result.rejected.append(RejectedFeedback(source, channel, reason, mask_pii(detail)))
        return result

    try:
        known = Channel(channel)
    except ValueError:
        return reject(
            FeedbackRejection.UNKNOWN_CHANNEL,
            f"channel is not one of {', '.join(c.value for c in Channel)}",
        )
    if len(body) > max_bytes:
        return reject(FeedbackRejection.TOO_LARGE, f"body has {len(body)} bytes (limit {max_bytes})")
    if not body.strip():
        return reject(FeedbackRejection.EMPTY_BODY, "body is empty")
    if known is Channel.REVIEW:
        return _parse_reviews(body, source=source, received_at=received_at, max_bytes=max_bytes)
    try:
        items = list(_PARSERS[known](body))
    except _RejectError as whole:
        return reject(whole.reason, whole.detail)
    for item in items:
        if isinstance(item, _RejectError):
            reject(item.reason, item.detail)
            continue
        result.records.append(
            FeedbackRecord(
                feedback_id=feedback_id_for(known.value, source, item.item_key),
                channel=known.value,
                received_at=received_at,
                customer_ref=customer_ref_for(item.customer, salt),
                product_id=_safe_product_id(item.product_id),
                text=mask_pii(item.text),
                title=None if item.title is None else mask_pii(item.title),
                rating=item.rating,
                source=source,
            )
        )
    return result


def _safe_product_id(product_id: str | None) -> str | None:
    """An id field that holds personal data is dropped, not stored."""
    if product_id is None or mask_pii(product_id) != product_id:
        return None
    return product_id


def _check_received_at(received_at: str) -> None:
    try:
        moment = datetime.fromisoformat(received_at)
    except ValueError as exc:
        raise ValueError(f"received_at is not ISO 8601: {received_at!r}") from exc
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"received_at must be a UTC timestamp: {received_at!r}")


# -- shared helpers ----------------------------------------------------------------------------------------


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _RejectError(FeedbackRejection.NOT_UTF8, f"body is not valid UTF-8 (byte {exc.start})") from exc


def _json_items(body: bytes, what: str) -> list[Any]:
    """A JSON object (one item) or a JSON array (one item each)."""
    text = _utf8(body)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _RejectError(FeedbackRejection.BAD_JSON, f"body is not valid JSON: {_json_error(exc)}") from exc
    except RecursionError as exc:  # "[[[[..." deeper than the interpreter's recursion limit
        raise _RejectError(FeedbackRejection.BAD_JSON, "body is JSON nested too deeply") from exc
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        if not document:
            raise _RejectError(FeedbackRejection.EMPTY_BODY, f"the JSON array holds no {what}")
        return document
    raise _RejectError(FeedbackRejection.WRONG_TYPE, f"body must be a {what} object or an array of them")


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return type(exc).__name__


def _id_field(obj: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = obj.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _RejectError(FeedbackRejection.MISSING_FIELD, f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _RejectError(FeedbackRejection.WRONG_TYPE, f"{name} must be a string or an integer")
    return str(value).strip()


def _text_field(obj: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise _RejectError(FeedbackRejection.MISSING_FIELD, f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise _RejectError(FeedbackRejection.WRONG_TYPE, f"{name} must be a string")
    value = value.strip()
    if not value:
        if required:
            raise _RejectError(FeedbackRejection.EMPTY_TEXT, f"{name} is empty")
        return None
    return value


def _rating(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if value is None:
        raise _RejectError(FeedbackRejection.MISSING_FIELD, f"{name} is missing")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _RejectError(FeedbackRejection.WRONG_TYPE, f"{name} must be a whole number of stars")
    if not 1 <= value <= 5:
        raise _RejectError(FeedbackRejection.INVALID_VALUE, f"{name} {value} is outside 1..5")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """JSON's ``"\\ud800"`` escapes decode to strings that cannot be encoded as UTF-8 anywhere later."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            pending += item
    return False


def _object_items(
    body: bytes, what: str, to_item: Callable[[Mapping[str, Any], int], _Item]
) -> Iterator[_ItemResult]:
    for position, obj in enumerate(_json_items(body, what), start=1):
        if not isinstance(obj, dict):
            yield _RejectError(FeedbackRejection.WRONG_TYPE, f"item {position} is not a JSON object")
            continue
        if _has_lone_surrogate(obj):
            yield _RejectError(
                FeedbackRejection.NOT_UTF8, f"item {position} holds a \\u escape of a lone UTF-16 surrogate"
            )
            continue
        try:
            yield to_item(obj, position)
        except _RejectError as err:
            yield _RejectError(err.reason, f"item {position}: {err.detail}")


# -- app reviews and social posts --------------------------------------------------------------------------


def _app_item(obj: Mapping[str, Any], position: int) -> _Item:
    review_id = _id_field(obj, "review_id", required=True)
    return _Item(
        item_key=f"id:{review_id}",
        customer=_id_field(obj, "user_id", required=True),
        product_id=_id_field(obj, "product_id", required=True),
        text=_text_field(obj, "body", required=True) or "",
        title=_text_field(obj, "title", required=False),
        rating=_rating(obj, "rating"),
    )


def _parse_app(body: bytes) -> Iterator[_ItemResult]:
    return _object_items(body, "app review", _app_item)


def _social_item(obj: Mapping[str, Any], position: int) -> _Item:
    post_id = _id_field(obj, "post_id", required=True)
    return _Item(
        item_key=f"id:{post_id}",
        customer=_id_field(obj, "author", required=True),
        product_id=_id_field(obj, "product_id", required=False),
        text=_text_field(obj, "text", required=True) or "",
    )


def _parse_social(body: bytes) -> Iterator[_ItemResult]:
    return _object_items(body, "social post", _social_item)


# -- chat transcripts --------------------------------------------------------------------------------------


def _chat_item(obj: Mapping[str, Any], position: int) -> _Item:
    conversation_id = _id_field(obj, "conversation_id", required=True)
    customer = _id_field(obj, "customer_id", required=True)
    turns = obj.get("turns")
    if turns is None:
        raise _RejectError(FeedbackRejection.MISSING_FIELD, "turns is missing")
    if not isinstance(turns, list):
        raise _RejectError(FeedbackRejection.WRONG_TYPE, "turns must be a list")
    said: list[str] = []
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise _RejectError(FeedbackRejection.WRONG_TYPE, f"turn {number} is not a JSON object")
        speaker = turn.get("speaker")
        if speaker is None:
            raise _RejectError(FeedbackRejection.MISSING_FIELD, f"turn {number} has no speaker")
        if not isinstance(speaker, str):
            raise _RejectError(FeedbackRejection.WRONG_TYPE, f"turn {number} speaker must be a string")
        text = turn.get("text")
        if text is not None and not isinstance(text, str):
            raise _RejectError(FeedbackRejection.WRONG_TYPE, f"turn {number} text must be a string")
        if speaker.strip().casefold() == "customer" and text and text.strip():
            said.append(text.strip())
    if not said:
        raise _RejectError(
            FeedbackRejection.NO_CUSTOMER_TEXT, "the customer said nothing in this conversation"
        )
    return _Item(
        item_key=f"id:{conversation_id}",
        customer=customer,
        product_id=_id_field(obj, "product_id", required=False),
        text="\n".join(said),
    )


def _parse_chat(body: bytes) -> Iterator[_ItemResult]:
    return _object_items(body, "chat transcript", _chat_item)


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


def _parse_call(body: bytes) -> Iterator[_ItemResult]:
    headers: dict[str, str] = {}
    said: list[str] = []
    labelled = False
    customer_speaking = False
    for line in _utf8(body).splitlines():
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
        raise _RejectError(FeedbackRejection.UNLABELLED_TRANSCRIPT, "the transcript has no speaker labels")
    if not said:
        raise _RejectError(FeedbackRejection.NO_CUSTOMER_TEXT, "the customer said nothing in this call")
    call_id = headers.get("call_id")
    yield _Item(
        item_key=f"id:{call_id}" if call_id else "#1",
        customer=headers.get("customer_id"),
        product_id=headers.get("product_id"),
        text="\n".join(said),
    )


# -- e-mail ------------------------------------------------------------------------------------------------

_BROKEN_MIME = (
    email_errors.MissingHeaderBodySeparatorDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64LengthDefect,
)
_QUOTE_STARTS = (
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*Begin forwarded message:\s*$", re.IGNORECASE),
    re.compile(r"^\s*On\b.*\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above the quoted message
)
_ON_LINE = re.compile(r"^\s*On\b.{4,}$")
_WROTE_LINE = re.compile(r"^.*\bwrote:\s*$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*From:\s.+$", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*(?:Sent|Date):\s.+$", re.IGNORECASE)
_SIGNATURE_STARTS = (
    re.compile(r"^--\s?$"),
    re.compile(r"^\s*Sent from my \w+", re.IGNORECASE),
    re.compile(r"^\s*Sent from (?:Mail|Outlook|Yahoo Mail|Gmail) for \w+", re.IGNORECASE),
    re.compile(r"^\s*Get Outlook for \w+", re.IGNORECASE),
)
_PRODUCT_MENTION = re.compile(
    r"\b(?:product|item|article)(?:\s+(?:id|no\.?|number))?\s*(?:[:#]\s*#?|\s)\s*(\d{1,12})\b", re.IGNORECASE
)


def strip_quotes_and_signature(text: str) -> str:
    """The new text of an e-mail: quoted replies, forwarded messages and signatures removed."""
    lines = text.splitlines()
    kept: list[str] = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if any(pattern.match(line) for pattern in (*_QUOTE_STARTS, *_SIGNATURE_STARTS)):
            break
        if _ON_LINE.match(line) and _WROTE_LINE.match(following):  # "On ..., Name <a@b>\nwrote:"
            break
        if _OUTLOOK_FROM.match(line) and _OUTLOOK_SENT.match(following):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "blockquote", "head", "title"})
    _BLOCK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.pieces.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body, one line per block; quoted ``<blockquote>`` text dropped."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = (re.sub(r"[ \t\xa0]+", " ", line).strip() for line in "".join(parser.pieces).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset()
    if charset is None:
        charset = "utf-8"
    try:
        return data.decode(charset)
    except LookupError as exc:
        raise _RejectError(FeedbackRejection.BAD_CHARSET, "a text part declares an unknown charset") from exc
    except UnicodeDecodeError as exc:
        reason = (
            FeedbackRejection.NOT_UTF8
            if charset.replace("_", "-") in {"utf-8", "utf8", "us-ascii", "ascii"}
            else FeedbackRejection.BAD_CHARSET
        )
        raise _RejectError(reason, f"a text part is not valid {charset} (byte {exc.start})") from exc


def _header(message: EmailMessage, name: str) -> str:
    """A header's text; raw bytes that are not UTF-8 (left as surrogates by the parser) become U+FFFD."""
    value = message.get(name)
    return _clean("" if value is None else str(value)).strip()


def _clean(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _body_part(message: EmailMessage, subtype: str) -> Message | None:
    for part in message.walk():
        if part.is_multipart() or part.get_content_type() != f"text/{subtype}":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        return part
    return None


#: What the stdlib's header parser raises on some damaged headers instead of recording a defect
#: (``From: a@`` -> IndexError, ``From: a:X;b@c`` -> AttributeError, found by the fuzz test).
_HEADER_PARSER_BUGS = (IndexError, AttributeError, TypeError, email_errors.MessageError)
_EMAIL_PACKAGE = os.path.dirname(email.__file__)


def _raised_by_email_package(exc: BaseException) -> bool:
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return trace is not None and trace.tb_frame.f_code.co_filename.startswith(_EMAIL_PACKAGE)


def _parse_email(body: bytes) -> Iterator[_ItemResult]:
    try:
        item = _email_item(body)
    except RecursionError as exc:  # multiparts nested thousands deep: the stdlib walks them recursively
        raise _RejectError(FeedbackRejection.BROKEN_MIME, "MIME parts are nested too deeply") from exc
    except _HEADER_PARSER_BUGS as exc:
        if not _raised_by_email_package(exc):
            raise  # our own bug: never hidden as bad input
        raise _RejectError(
            FeedbackRejection.BROKEN_MIME, f"a header cannot be parsed ({type(exc).__name__})"
        ) from exc
    yield item


def _email_item(body: bytes) -> _Item:
    message = BytesParser(policy=policy.default).parsebytes(body)
    assert isinstance(message, EmailMessage)
    plain, html = _body_part(message, "plain"), _body_part(message, "html")
    chosen = plain if plain is not None else html
    text = "" if chosen is None else _part_text(chosen)  # decoding records base64 defects on the part
    defects = [defect for part in message.walk() for defect in part.defects]
    broken = [type(d).__name__ for d in defects if isinstance(d, _BROKEN_MIME)]
    if broken or not message.keys():
        raise _RejectError(
            FeedbackRejection.BROKEN_MIME, f"MIME structure is broken: {', '.join(broken) or 'no headers'}"
        )
    sender = message.get("From")
    addresses = getattr(sender, "addresses", ()) if sender is not None else ()
    address = next((_clean(a.addr_spec) for a in addresses if a.username and a.domain), None)
    if address is None:
        raise _RejectError(FeedbackRejection.MISSING_FIELD, "the message has no From address")
    if chosen is None:
        raise _RejectError(
            FeedbackRejection.NO_CUSTOMER_TEXT, "the message has no text/plain or text/html part"
        )
    if chosen is html:
        text = html_to_text(text)
    kept = strip_quotes_and_signature(text)
    if not kept:
        raise _RejectError(
            FeedbackRejection.NO_CUSTOMER_TEXT, "nothing is left once quotes and signature are removed"
        )
    subject = _header(message, "Subject") or None
    message_id = _header(message, "Message-ID")
    header_product = _header(message, "X-Product-Id")
    mention = next(
        (m[1] for m in (_PRODUCT_MENTION.search(s) for s in (subject or "", kept)) if m is not None), None
    )
    return _Item(
        item_key=f"id:{message_id}" if message_id else "#1",
        customer=address,
        product_id=header_product or mention,
        text=kept,
        title=subject,
    )


# -- product reviews (the lake's parser) -------------------------------------------------------------------

_REVIEW_REASONS: dict[QuarantineReason, FeedbackRejection] = {
    QuarantineReason.BAD_ENCODING: FeedbackRejection.NOT_UTF8,
    QuarantineReason.MISSING_TEXT: FeedbackRejection.EMPTY_TEXT,
    QuarantineReason.MISSING_REQUIRED_COLUMNS: FeedbackRejection.MISSING_FIELD,
    QuarantineReason.RATING_OUT_OF_RANGE: FeedbackRejection.INVALID_VALUE,
    QuarantineReason.INVALID_VALUE: FeedbackRejection.INVALID_VALUE,
    QuarantineReason.OVERSIZED_FIELD: FeedbackRejection.TOO_LARGE,
    QuarantineReason.UNPARSABLE_LINE: FeedbackRejection.UNPARSABLE,
    QuarantineReason.UNREADABLE_FILE: FeedbackRejection.UNPARSABLE,
    QuarantineReason.UNSUPPORTED_FORMAT: FeedbackRejection.UNSUPPORTED_FORMAT,
    QuarantineReason.OBJECT_TOO_LARGE: FeedbackRejection.TOO_LARGE,
}


def rejection_for_review(quarantined: QuarantinedRecord) -> RejectedFeedback:
    """A record the review parser quarantined, as a rejection (its own reason kept in the detail)."""
    where = "the file" if quarantined.record_number == 0 else f"record {quarantined.record_number}"
    return RejectedFeedback(
        source=quarantined.source_key,
        channel=Channel.REVIEW.value,
        reason=_REVIEW_REASONS.get(quarantined.reason, FeedbackRejection.UNPARSABLE),
        detail=mask_pii(f"{where}: {quarantined.reason.value}: {quarantined.detail}"),
    )


def record_for_review(review: Review, *, received_at: str) -> FeedbackRecord:
    """A review the lake's parser accepted, as a feedback record (no customer; product = clothing id)."""
    return FeedbackRecord(
        feedback_id=feedback_id_for(Channel.REVIEW.value, review.source_key, review.review_id),
        channel=Channel.REVIEW.value,
        received_at=received_at,
        customer_ref=None,
        product_id=_safe_product_id(review.product_id),
        text=mask_pii(review.text),
        title=None if review.title is None else mask_pii(review.title),
        rating=review.rating,
        source=review.source_key,
    )


def _parse_reviews(body: bytes, *, source: str, received_at: str, max_bytes: int) -> FeedbackParse:
    try:
        parsed = ReviewParser().parse(
            body,
            source_key=source,
            channel=Channel.REVIEW.value,
            ingested_at=datetime.fromisoformat(received_at),
            max_bytes=max_bytes,
        )
    except RecursionError:  # the lake parser lets json.loads' RecursionError through on deep nesting
        rejection = RejectedFeedback(
            source, Channel.REVIEW.value, FeedbackRejection.UNPARSABLE, "the file: JSON nested too deeply"
        )
        return FeedbackParse(rejected=[rejection])
    if parsed.total_records == 0:  # a header and nothing else: the body still needs an outcome
        rejection = RejectedFeedback(source, Channel.REVIEW.value, FeedbackRejection.EMPTY_BODY, "no records")
        return FeedbackParse(rejected=[rejection])
    result = FeedbackParse(rejected=[rejection_for_review(quarantined) for quarantined in parsed.quarantined])
    for review in parsed.reviews:
        # The lake parser checks for undecodable bytes, not for "\ud800" escapes in JSON reviews.
        if _has_lone_surrogate([review.review_id, review.product_id, review.title, review.text]):
            detail = f"record {review.record_number}: holds a \\u escape of a lone UTF-16 surrogate"
            result.rejected.append(
                RejectedFeedback(source, review.channel, FeedbackRejection.NOT_UTF8, detail)
            )
        else:
            result.records.append(record_for_review(review, received_at=received_at))
    return result


_PARSERS: dict[Channel, Callable[[bytes], Iterator[_ItemResult]]] = {
    Channel.EMAIL: _parse_email,
    Channel.CHAT: _parse_chat,
    Channel.CALL: _parse_call,
    Channel.APP: _parse_app,
    Channel.SOCIAL: _parse_social,
}
