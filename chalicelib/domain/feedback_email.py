"""E-mail feedback: one RFC 822 message, reduced to the customer's new text.

- Text: the text/plain part, else the text/html part with tags stripped (``<blockquote>``, script and
  style dropped). Quoted replies (lines starting with ``>``; everything from an ``On ... wrote:`` line,
  ``-----Original Message-----``, an Outlook ``From:``/``Sent:`` block or ``Begin forwarded
  message:``) and signatures (from a ``-- `` line, or a ``Sent from my ...`` / ``Get Outlook for ...``
  line) are dropped; nothing left is ``no_customer_text``.
- Title = Subject; customer = the From address (required); product id = the ``X-Product-Id`` header,
  else the first ``product #1234`` / ``product id: 1234`` / ``item no. 1234`` (digits only) in the
  subject, then the kept body text.
- Encoding: a part is decoded strictly in its declared charset (UTF-8 when it declares none, as modern
  clients send); invalid bytes are ``not_utf8`` for UTF-8/ASCII parts and ``bad_charset`` for other or
  unknown charsets. Raw 8-bit bytes in headers are decoded leniently (invalid ones become U+FFFD), as
  the stdlib parser does.
- MIME structure defects (no header block, missing or unterminated multipart boundaries, corrupt
  base64), parts nested past the recursion limit, and damaged headers on which the stdlib header
  parser raises instead of recording a defect make the message ``broken_mime``.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

import email
import os
import re
from collections.abc import Iterator
from email import errors as email_errors
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser

from chalicelib.domain.feedback_record import FeedbackRejection, ItemRejectedError, ItemResult, ParsedItem

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
        raise ItemRejectedError(
            FeedbackRejection.BAD_CHARSET, "a text part declares an unknown charset"
        ) from exc
    except UnicodeDecodeError as exc:
        reason = (
            FeedbackRejection.NOT_UTF8
            if charset.replace("_", "-") in {"utf-8", "utf8", "us-ascii", "ascii"}
            else FeedbackRejection.BAD_CHARSET
        )
        raise ItemRejectedError(reason, f"a text part is not valid {charset} (byte {exc.start})") from exc


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


def parse_email(body: bytes) -> Iterator[ItemResult]:
    try:
        item = _email_item(body)
    except RecursionError as exc:  # multiparts nested thousands deep: the stdlib walks them recursively
        raise ItemRejectedError(FeedbackRejection.BROKEN_MIME, "MIME parts are nested too deeply") from exc
    except _HEADER_PARSER_BUGS as exc:
        if not _raised_by_email_package(exc):
            raise  # our own bug: never hidden as bad input
        raise ItemRejectedError(
            FeedbackRejection.BROKEN_MIME, f"a header cannot be parsed ({type(exc).__name__})"
        ) from exc
    yield item


def _email_item(body: bytes) -> ParsedItem:
    message = BytesParser(policy=policy.default).parsebytes(body)
    assert isinstance(message, EmailMessage)
    plain, html = _body_part(message, "plain"), _body_part(message, "html")
    chosen = plain if plain is not None else html
    text = "" if chosen is None else _part_text(chosen)  # decoding records base64 defects on the part
    defects = [defect for part in message.walk() for defect in part.defects]
    broken = [type(d).__name__ for d in defects if isinstance(d, _BROKEN_MIME)]
    if broken or not message.keys():
        raise ItemRejectedError(
            FeedbackRejection.BROKEN_MIME, f"MIME structure is broken: {', '.join(broken) or 'no headers'}"
        )
    sender = message.get("From")
    addresses = getattr(sender, "addresses", ()) if sender is not None else ()
    address = next((_clean(a.addr_spec) for a in addresses if a.username and a.domain), None)
    if address is None:
        raise ItemRejectedError(FeedbackRejection.MISSING_FIELD, "the message has no From address")
    if chosen is None:
        raise ItemRejectedError(
            FeedbackRejection.NO_CUSTOMER_TEXT, "the message has no text/plain or text/html part"
        )
    if chosen is html:
        text = html_to_text(text)
    kept = strip_quotes_and_signature(text)
    if not kept:
        raise ItemRejectedError(
            FeedbackRejection.NO_CUSTOMER_TEXT, "nothing is left once quotes and signature are removed"
        )
    subject = _header(message, "Subject") or None
    message_id = _header(message, "Message-ID")
    header_product = _header(message, "X-Product-Id")
    mention = next(
        (m[1] for m in (_PRODUCT_MENTION.search(s) for s in (subject or "", kept)) if m is not None), None
    )
    return ParsedItem(
        item_key=f"id:{message_id}" if message_id else "#1",
        customer=address,
        product_id=header_product or mention,
        text=kept,
        title=subject,
    )
