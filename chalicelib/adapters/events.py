"""EventBridge port: publishes ReviewSense's own domain events (e.g. "Reviews Ingested")."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import DependencyUnavailableError


class EventBridgePublisher:
    def __init__(self, client: Any, bus: str, source: str) -> None:
        self._events = client
        self._bus = bus
        self._source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise DependencyUnavailableError(f"EventBridge rejected the event: {response['Entries']}")
