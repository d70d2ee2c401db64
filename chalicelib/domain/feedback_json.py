"""JSON feedback bodies: one object (one item) or an array of objects (one item each), and their fields.

Chat transcripts, app reviews and social posts arrive this way. A body that is not UTF-8, not JSON,
nested past the interpreter's recursion limit, an empty array or a scalar is rejected whole; an
element that is not an object, or that holds a JSON ``\\ud800`` escape of a lone surrogate (which no
later UTF-8 writer could encode), is rejected alone, as is one with a missing, empty or mistyped field.

Pure, like every feedback module: the standard library and sibling domain modules only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chalicelib.domain.feedback_record import (
    FeedbackRejection,
    ItemRejectedError,
    ItemResult,
    ParsedItem,
    utf8_text,
)


def json_items(body: bytes, what: str) -> list[Any]:
    """A JSON object (one item) or a JSON array (one item each)."""
    text = utf8_text(body)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ItemRejectedError(
            FeedbackRejection.BAD_JSON, f"body is not valid JSON: {_json_error(exc)}"
        ) from exc
    except RecursionError as exc:  # "[[[[..." deeper than the interpreter's recursion limit
        raise ItemRejectedError(FeedbackRejection.BAD_JSON, "body is JSON nested too deeply") from exc
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        if not document:
            raise ItemRejectedError(FeedbackRejection.EMPTY_BODY, f"the JSON array holds no {what}")
        return document
    raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"body must be a {what} object or an array of them")


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return type(exc).__name__


def object_items(
    body: bytes, what: str, to_item: Callable[[Mapping[str, Any], int], ParsedItem]
) -> Iterator[ItemResult]:
    """Each element of the body through ``to_item``, or rejected with its 1-based position."""
    for position, obj in enumerate(json_items(body, what), start=1):
        if not isinstance(obj, dict):
            yield ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"item {position} is not a JSON object")
            continue
        if has_lone_surrogate(obj):
            yield ItemRejectedError(
                FeedbackRejection.NOT_UTF8, f"item {position} holds a \\u escape of a lone UTF-16 surrogate"
            )
            continue
        try:
            yield to_item(obj, position)
        except ItemRejectedError as err:
            yield ItemRejectedError(err.reason, f"item {position}: {err.detail}")


def has_lone_surrogate(value: Any) -> bool:
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


def id_field(obj: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    """A string or integer identifier, as text; blank counts as missing."""
    value = obj.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ItemRejectedError(FeedbackRejection.MISSING_FIELD, f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"{name} must be a string or an integer")
    return str(value).strip()


def text_field(obj: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    """A stripped string; blank is ``empty_text`` when required, else no value."""
    value = obj.get(name)
    if value is None:
        if required:
            raise ItemRejectedError(FeedbackRejection.MISSING_FIELD, f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"{name} must be a string")
    value = value.strip()
    if not value:
        if required:
            raise ItemRejectedError(FeedbackRejection.EMPTY_TEXT, f"{name} is empty")
        return None
    return value


def star_rating(obj: Mapping[str, Any], name: str) -> int:
    """A whole number of stars in 1..5 (a digit string or an integral float is accepted)."""
    value = obj.get(name)
    if value is None:
        raise ItemRejectedError(FeedbackRejection.MISSING_FIELD, f"{name} is missing")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItemRejectedError(FeedbackRejection.WRONG_TYPE, f"{name} must be a whole number of stars")
    if not 1 <= value <= 5:
        raise ItemRejectedError(FeedbackRejection.INVALID_VALUE, f"{name} {value} is outside 1..5")
    return value
