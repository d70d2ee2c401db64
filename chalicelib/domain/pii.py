"""Find and mask personal data in free text before anything is written, logged, scored or published.

Customer feedback carries e-mail addresses, phone numbers, payment card numbers and IBANs. Every text
that leaves the fan-in parser goes through ``mask_pii`` first, so no store, log line, endpoint request
or alert ever holds them in clear. The rules lean on checksums where the format has one, so that
ordinary numbers survive: a 13-19 digit number (one run, or groups of 3+ digits separated by single
spaces or dashes) is a card only when it passes the Luhn check (order numbers usually do not), an IBAN
only when it passes the ISO 13616 mod-97 check and has its country's length (15-34 characters for a
country not in ``IBAN_LENGTHS``). Phone numbers have no checksum, so they are recognised by shape only:

- a leading ``+`` and country code with 8-15 digits in all (``+44 20 7946 0958``, ``+1-555-123-4567``,
  ``+49 (0)30 1234567``, ``+447700900123``);
- the North American shape ``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, ``555 123 4567``,
  optionally after ``1-`` / ``+1``;
- a national number with a trunk ``0`` and separators, 10-11 digits (``020 7946 0958``, ``07700 900123``);
- any 7-15 digit run (separators allowed) within a few words after a phone word (call, phone, tel,
  mobile, cell, text, sms, whatsapp, fax), unless it is shaped like a date;

each optionally followed by an extension (``x123``, ``ext. 123``, ``extension 123``). Dates, prices,
sizes (``size 10-12``), product ids and short numbers match none of these shapes and are left alone.
Known gaps: a bare national number without a phone word before it (``my number is 07700900123``) and
a card written in groups of one or two digits are not found. Every scan is linear in the text (a
256 KiB adversarial body takes at most about a second). Pure: standard library only, no I/O.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    IBAN = "iban"


#: What each kind of personal data is replaced with.
PLACEHOLDERS: dict[PiiKind, str] = {
    PiiKind.EMAIL: "[EMAIL]",
    PiiKind.PHONE: "[PHONE]",
    PiiKind.CARD: "[CARD]",
    PiiKind.IBAN: "[IBAN]",
}


class PiiMatch(NamedTuple):
    """One finding: its kind and its ``(start, end)`` span in the text (unpacks as ``kind, span``)."""

    kind: PiiKind
    span: tuple[int, int]


# -- e-mail ------------------------------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"(?<![\w.%+-])\w[\w.%+'-]{{0,63}}@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,24}}\b")

# -- IBAN --------------------------------------------------------------------------------------------

#: IBAN length per country (the SWIFT IBAN registry); a country not listed needs 15-34 characters.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?=[ -]?[A-Za-z0-9])")
_IBAN_MIN, _IBAN_MAX = 15, 34


def iban_is_valid(candidate: str) -> bool:
    """ISO 13616: known country length (or 15-34 characters) and ``int(rearranged) % 97 == 1``."""
    compact = re.sub(r"[ -]", "", candidate).upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", compact):
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    if not _IBAN_MIN <= len(compact) <= _IBAN_MAX:
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _ibans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for start_match in _IBAN_START.finditer(text):
        start = start_match.start()
        if spans and start < spans[-1][1]:
            continue
        # Walk alphanumerics (single spaces or dashes between them allowed) and keep the longest
        # prefix that ends at a word boundary and is a valid IBAN: "DE89 3704 ... 00 AND" stops at 00.
        known = IBAN_LENGTHS.get(text[start : start + 2].upper())
        lengths = range(known, known + 1) if known else range(_IBAN_MIN, _IBAN_MAX + 1)
        best: int | None = None
        count, i = 0, start
        while i < len(text) and count <= _IBAN_MAX:
            ch = text[i]
            if ch.isascii() and ch.isalnum():
                count += 1
                i += 1
                at_boundary = i == len(text) or not (text[i].isascii() and text[i].isalnum())
                if at_boundary and count in lengths and iban_is_valid(text[start:i]):
                    best = i
            elif ch in " -" and i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalnum():
                i += 1
            else:
                break
        if best is not None:
            spans.append((start, best))
    return spans


# -- payment cards -------------------------------------------------------------------------------------

_DIGIT_GROUPS = re.compile(r"(?<![\w.,/-])\d+(?:[ -]\d+)*(?![\w/]|[.,]\d)")
#: Card numbers are written as one run or in groups of 3 or more digits (4-4-4-4, 4-6-5, 4-4-4-4-3).
_CARD_GROUP_MIN = 3
_CARD_MIN, _CARD_MAX = 13, 19


def luhn_is_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    if not digits.isdigit():
        return False
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = int(ch)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _cards(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in _DIGIT_GROUPS.finditer(text):
        run = match[0]
        groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
        # A card may sit inside a longer run of digit groups ("qty 2 4111 1111 1111 1111 2 pcs"): from
        # each group, take the longest run of whole groups (3+ digits each) with 13-19 digits that
        # passes Luhn. A run never spans more than 19 digits, so the scan is linear in the text.
        first = 0
        while first < len(groups):
            digits, found = "", None
            for last in range(first, len(groups)):
                group = run[groups[last][0] : groups[last][1]]
                digits += group
                if len(digits) > _CARD_MAX or len(group) < _CARD_GROUP_MIN:
                    break
                if len(digits) >= _CARD_MIN and luhn_is_valid(digits):
                    found = last
            if found is None:
                first += 1
                continue
            spans.append((match.start() + groups[first][0], match.start() + groups[found][1]))
            first = found + 1
    return spans


# -- phone numbers ---------------------------------------------------------------------------------------

_EXTENSION = r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6}\b)?"
_NOT_BEFORE = r"(?<![\w+/.,-])"
_NOT_AFTER = r"(?![\w/]|[.,-]\d)"
_PHONE_SHAPES = re.compile(
    "|".join(
        (
            # international: +CC then groups, (0) trunk allowed
            rf"{_NOT_BEFORE}\+\d{{1,3}}(?:[ .-]?(?:\(\d{{1,4}}\)|\d{{1,5}})){{1,6}}{_EXTENSION}{_NOT_AFTER}",
            # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-0199
            rf"{_NOT_BEFORE}(?:1[ .-]?)?(?:\(\d{{3}}\)[ ]?|\d{{3}}[ .-])\d{{3}}[ .-]\d{{4}}"
            rf"{_EXTENSION}{_NOT_AFTER}",
            # national with trunk 0 and separators: 020 7946 0958, 07700 900123, 030-1234567
            rf"{_NOT_BEFORE}0\d{{1,4}}(?:[ -]\d{{2,8}}){{1,3}}{_EXTENSION}{_NOT_AFTER}",
        )
    ),
    re.IGNORECASE,
)
_PHONE_WORD = re.compile(
    r"\b(?:call|called|calling|phone|tel|telephone|mobile|cell|cellphone|text|sms|whatsapp|fax)\b"
    r"[^\d\n]{0,24}?((?:\+|\(?\d)[\d ().-]{5,22}\d" + _EXTENSION + r")" + _NOT_AFTER,
    re.IGNORECASE,
)
_DATE_SHAPE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_PHONE_MIN, _PHONE_MAX = 7, 15
_EXTENSION_SPLIT = re.compile(r"[ ]?(?:x|ext\.?|extension)[ ]?(?=\d)", re.IGNORECASE)


def _digit_count(value: str) -> int:
    return sum(ch.isdigit() for ch in _EXTENSION_SPLIT.split(value, maxsplit=1)[0])


def _phones(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in _PHONE_SHAPES.finditer(text):
        value = match[0]
        minimum = 8 if value.startswith("+") else 10
        if minimum <= _digit_count(value) <= _PHONE_MAX:
            spans.append(match.span())
    for match in _PHONE_WORD.finditer(text):
        value = match[1].rstrip(" .-")
        if _DATE_SHAPE.fullmatch(value) or not _PHONE_MIN <= _digit_count(value) <= _PHONE_MAX:
            continue
        spans.append((match.start(1), match.start(1) + len(value)))
    return spans


# -- together --------------------------------------------------------------------------------------------


def find_pii(text: str) -> list[PiiMatch]:
    """Every piece of personal data in ``text``, in order, without overlaps.

    Kinds are searched most specific first (e-mail, IBAN, card, phone); a later finding that overlaps
    an earlier one is dropped, so a card number is never also reported as a phone number.
    """
    found: list[PiiMatch] = []

    def add(kind: PiiKind, spans: list[tuple[int, int]]) -> None:
        for start, end in spans:
            if all(end <= s or start >= e for _, (s, e) in found):
                found.append(PiiMatch(kind, (start, end)))

    add(PiiKind.EMAIL, [m.span() for m in _EMAIL.finditer(text)])
    add(PiiKind.IBAN, _ibans(text))
    add(PiiKind.CARD, _cards(text))
    add(PiiKind.PHONE, _phones(text))
    return sorted(found, key=lambda match: match.span)


def mask_pii(text: str) -> str:
    """``text`` with every finding of ``find_pii`` replaced by its placeholder (``[EMAIL]`` ...)."""
    pieces: list[str] = []
    position = 0
    for kind, (start, end) in find_pii(text):
        pieces += [text[position:start], PLACEHOLDERS[kind]]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)
