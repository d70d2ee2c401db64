"""App reviews and social posts: flat JSON items whose fields map one to one onto the record.

Both channels differ only in which field holds what, so one ``post_item`` reads both:

- app review: ``review_id``, ``user_id``, ``product_id`` (required), ``body``, optional ``title``, and a
  ``rating`` of 1..5 whole stars (``"2"`` and ``4.0`` are accepted);
- social post: ``post_id``, ``author`` (a handle; hashed without ``@`` and case), optional
  ``product_id``, ``text``; no title, no rating.

Fields are read in that order, so an item with several faults is rejected for the first one.

Pure: standard library and sibling domain modules only; no I/O, no clock, no environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

from chalicelib.domain.feedback_json import id_field, object_items, star_rating, text_field
from chalicelib.domain.feedback_record import ItemResult, ParsedItem


def post_item(
    obj: Mapping[str, Any],
    position: int,
    *,
    item_id: str,
    customer: str,
    text: str,
    product_required: bool,
    title: str | None = None,
    rating: str | None = None,
) -> ParsedItem:
    """One item from the fields of ``obj`` the keywords name (read: id, customer, product, text, ...)."""
    key = id_field(obj, item_id, required=True)
    return ParsedItem(
        item_key=f"id:{key}",
        customer=id_field(obj, customer, required=True),
        product_id=id_field(obj, "product_id", required=product_required),
        text=text_field(obj, text, required=True) or "",
        title=None if title is None else text_field(obj, title, required=False),
        rating=None if rating is None else star_rating(obj, rating),
    )


_APP_REVIEW = partial(
    post_item, item_id="review_id", customer="user_id", text="body", product_required=True, title="title",
    rating="rating",
)  # fmt: skip
_SOCIAL_POST = partial(post_item, item_id="post_id", customer="author", text="text", product_required=False)


def parse_app(body: bytes) -> Iterator[ItemResult]:
    return object_items(body, "app review", _APP_REVIEW)


def parse_social(body: bytes) -> Iterator[ItemResult]:
    return object_items(body, "social post", _SOCIAL_POST)
