"""A job's CloudWatch Logs and metrics, buffered and sent in batches.

SageMaker publishes a job's output to ``/aws/sagemaker/...`` log groups and the metrics its definitions
match to CloudWatch; the watchdog and the CLI read them there. Sending is best effort: telemetry must
never fail a job.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime
from typing import Any

from reviewsense.localcloud.sagemaker.common import METRIC_NAMESPACE, Clients

log = logging.getLogger(__name__)


class Telemetry:
    """Sends a job's log lines to CloudWatch Logs and its metrics to CloudWatch, in batches (best effort)."""

    def __init__(self, clients: Clients, log_group: str, log_stream: str, host: str | None = None) -> None:
        self._clients = clients
        self._group = log_group
        self._stream = log_stream
        self._host = host
        self._lines: list[dict[str, Any]] = []
        self._metrics: list[dict[str, Any]] = []
        self._ready = False
        self._warned = False

    def line(self, text: str) -> None:
        if text.strip():
            self._lines.append({"timestamp": int(time.time() * 1000), "message": text})

    def metric(self, name: str, value: float, when: datetime) -> None:
        datum: dict[str, Any] = {"MetricName": name, "Value": value, "Timestamp": when, "Unit": "None"}
        if self._host is not None:
            datum["Dimensions"] = [{"Name": "Host", "Value": self._host}]
        self._metrics.append(datum)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        metrics, self._metrics = self._metrics, []
        try:
            if lines:
                logs = self._clients.get("logs")
                if not self._ready:
                    for call, kwargs in (
                        (logs.create_log_group, {"logGroupName": self._group}),
                        (
                            logs.create_log_stream,
                            {"logGroupName": self._group, "logStreamName": self._stream},
                        ),
                    ):
                        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                            call(**kwargs)
                    self._ready = True
                for start in range(0, len(lines), 5000):
                    logs.put_log_events(
                        logGroupName=self._group,
                        logStreamName=self._stream,
                        logEvents=lines[start : start + 5000],
                    )
            for start in range(0, len(metrics), 150):
                self._clients.get("cloudwatch").put_metric_data(
                    Namespace=METRIC_NAMESPACE, MetricData=metrics[start : start + 150]
                )
        except Exception as exc:  # telemetry must never fail a job
            if not self._warned:
                log.warning("could not publish logs/metrics for %s: %s", self._stream, exc)
                self._warned = True
