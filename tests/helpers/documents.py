"""Walking parsed JSON documents (templates, state machine definitions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(node: Any) -> Iterator[Any]:
    """Every value in ``node``, depth first, ``node`` itself included."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object (dict) in ``node``, depth first."""
    return (value for value in walk(node) if isinstance(value, dict))
