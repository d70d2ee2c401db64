"""Polling with a deadline: for work that finishes in another thread or process.

The deadline only bounds how long a test waits for something that should happen; it is never the
thing a test checks (timing belongs to the benchmarks, ``make bench-*``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout_s: float = 60.0,
    what: str = "condition",
    interval_s: float = 0.2,
) -> T:
    """The first truthy value of ``predicate()``; AssertionError if none came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout_s:.0f} s (last: {value!r})")
        time.sleep(interval_s)


def wait_status(
    describe: Callable[[], dict[str, Any]], field: str, still: tuple[str, ...], timeout_s: float = 60.0
) -> dict[str, Any]:
    """Poll a Describe* call until ``field`` leaves the ``still`` statuses; return the last description."""
    last: dict[str, Any] = {}

    def settled() -> dict[str, Any] | None:
        nonlocal last
        last = describe()
        return None if last[field] in still else last

    try:
        return wait_until(settled, timeout_s, what=f"{field} leaving {still}", interval_s=0.1)
    except AssertionError:
        raise AssertionError(f"{field} still {last.get(field)} after {timeout_s:.0f} s") from None
