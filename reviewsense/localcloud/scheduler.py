"""Fires EventBridge schedule rules on the local cloud (moto stores them but never fires them).

``@app.schedule("rate(2 minutes)")`` handlers get the same "Scheduled Event" they get on AWS, first
one interval after start. ``cron(...)`` expressions are not evaluated locally: they are reported once
and skipped (invoke such a function with ``lambda.invoke`` to run it by hand).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_arn: str, region: str, account: str, when: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class LocalScheduler:
    def __init__(
        self,
        schedules: dict[str, str],
        fire: Callable[[str, dict[str, Any]], Any],
        region: str,
        account: str,
        speedup: float = 1.0,
    ) -> None:
        """``schedules``: function name -> schedule expression; ``speedup`` > 1 shortens every interval."""
        self._fire = fire
        self._region = region
        self._account = account
        self._stop = threading.Event()
        self._next: dict[str, tuple[float, float]] = {}
        for function, expression in schedules.items():
            seconds = rate_seconds(expression)
            if seconds is None:
                logger.warning(
                    "local cloud: %s has schedule %s, which is not fired locally", function, expression
                )
                continue
            interval = seconds / max(speedup, 1e-9)
            self._next[function] = (time.monotonic() + interval, interval)
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)

    def start(self) -> None:
        if self._next:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for function, (due, interval) in list(self._next.items()):
                if now >= due:
                    self._next[function] = (now + interval, interval)
                    rule = f"arn:aws:events:{self._region}:{self._account}:rule/{function}"
                    try:
                        self._fire(
                            function, scheduled_event(rule, self._region, self._account, datetime.now(UTC))
                        )
                    except Exception:
                        logger.exception("scheduled invocation of %s failed to start", function)
