"""CloudWatch Logs port: the lines a SageMaker training job has logged so far, all at once or as they come."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, translate


@dataclass(frozen=True)
class LogEvent:
    """One log event: its stream, CloudWatch timestamp (ms since the epoch) and message."""

    stream: str
    timestamp_ms: int
    message: str


class LogReader:
    def __init__(self, client: Any) -> None:
        self._logs = client

    def lines(self, group: str, stream_prefix: str) -> list[str]:
        """Every message of the streams starting with ``stream_prefix``, oldest first per stream.

        A group that does not exist yet (the job has not logged anything) gives no lines.
        """
        try:
            streams = self._logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream_prefix)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise translate(exc) from exc
        lines: list[str] = []
        for stream in streams.get("logStreams", []):
            kwargs: dict[str, Any] = {
                "logGroupName": group,
                "logStreamName": stream["logStreamName"],
                "startFromHead": True,
            }
            while True:
                page = self._logs.get_log_events(**kwargs)
                lines.extend(e["message"] for e in page.get("events", []))
                token = page.get("nextForwardToken")
                if not page.get("events") or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        return lines

    def new_events(self, group: str, stream_prefix: str, cursor: dict[str, str]) -> list[LogEvent]:
        """The events logged since the last call with ``cursor``, oldest first; ``cursor`` is updated.

        ``cursor`` maps each stream to the ``nextForwardToken`` GetLogEvents gave last (start with ``{}``:
        everything from the head). A group or stream that does not exist yet (the job has not started, or
        CloudWatch has not shown its first lines yet) gives no events, and the next call tries again.
        """
        try:
            streams = self._stream_names(group, stream_prefix)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return []
            raise translate(exc) from exc
        events: list[LogEvent] = []
        for stream in streams:
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if stream in cursor:
                kwargs["nextToken"] = cursor[stream]
            while True:
                try:
                    page = self._logs.get_log_events(**kwargs)
                except ClientError as exc:
                    if error_code(exc) == "ResourceNotFoundException":
                        break
                    raise translate(exc) from exc
                batch = page.get("events", [])
                events.extend(LogEvent(stream, int(e["timestamp"]), str(e["message"])) for e in batch)
                token = page.get("nextForwardToken")
                if token:
                    cursor[stream] = str(token)
                # GetLogEvents answers the token it was given once the stream holds nothing newer.
                if not batch or not token or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        return sorted(events, key=lambda e: e.timestamp_ms)

    def _stream_names(self, group: str, stream_prefix: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": stream_prefix}
        while True:
            page = self._logs.describe_log_streams(**kwargs)
            names.extend(str(s["logStreamName"]) for s in page.get("logStreams", []))
            if not page.get("nextToken"):
                return names
            kwargs["nextToken"] = page["nextToken"]
