"""CloudWatch Logs port: the lines a SageMaker training job has logged so far."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, translate


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
