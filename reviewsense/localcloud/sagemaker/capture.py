"""Data capture: what an endpoint's variants received and answered, as SageMaker writes it to S3.

The monitor Lambda compares captured requests with the training baseline, so the records keep
SageMaker's JSON Lines layout (``captureData``, ``eventMetadata``), its sampling, its content-type
encoding rules and its ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` keys.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from reviewsense.localcloud.sagemaker.common import Clients

log = logging.getLogger(__name__)


class CaptureWriter:
    """Data capture: JSON Lines records buffered per endpoint/variant/hour, flushed to S3 every second."""

    def __init__(self, clients: Clients, flush_s: float = 1.0) -> None:
        self._clients = clients
        self._flush_s = flush_s
        self._buffers: dict[str, tuple[float, datetime, list[str]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sagemaker-capture", daemon=True)
        self._thread.start()

    def record(
        self,
        config: dict[str, Any],
        endpoint: str,
        variant: str,
        req: tuple[bytes, str],
        resp: tuple[bytes, str],
        inference_id: str | None,
    ) -> None:
        if not config.get("EnableCapture") or not config.get("DestinationS3Uri"):
            return
        if random.random() * 100 >= float(config.get("InitialSamplingPercentage", 100)):
            return
        modes = {str(o.get("CaptureMode", "")).lower() for o in config.get("CaptureOptions") or []}
        headers = config.get("CaptureContentTypeHeader") or {}
        csv_types = {t.lower() for t in headers.get("CsvContentTypes", [])}
        json_types = {t.lower() for t in headers.get("JsonContentTypes", [])}
        now = datetime.now(UTC)
        capture: dict[str, Any] = {}
        if not modes or modes & {"input", "inputandoutput"}:
            capture["endpointInput"] = _captured(req[0], req[1], "INPUT", csv_types, json_types)
        if not modes or modes & {"output", "inputandoutput"}:
            capture["endpointOutput"] = _captured(resp[0], resp[1], "OUTPUT", csv_types, json_types)
        metadata: dict[str, Any] = {
            "eventId": str(uuid.uuid4()),
            "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        }
        if inference_id:
            metadata["inferenceId"] = inference_id
        line = json.dumps({"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"})
        prefix = f"{str(config['DestinationS3Uri']).rstrip('/')}/{endpoint}/{variant}/{now:%Y/%m/%d/%H}"
        with self._lock:
            first, started, lines = self._buffers.get(prefix, (time.monotonic(), now, []))
            lines.append(line)
            self._buffers[prefix] = (first, started, lines)

    def flush(self, everything: bool = True) -> None:
        with self._lock:
            due = {
                p: b
                for p, b in self._buffers.items()
                if everything or time.monotonic() - b[0] >= self._flush_s or len(b[2]) >= 1000
            }
            for prefix in due:
                del self._buffers[prefix]
        for prefix, (_, started, lines) in due.items():
            name = f"{started:%M-%S}-{started.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            try:
                self._clients.put(f"{prefix}/{name}", ("\n".join(lines) + "\n").encode("utf-8"))
            except Exception as exc:
                log.warning("data capture to %s failed: %s", prefix, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self.flush(everything=False)


def _captured(
    data: bytes, content_type: str, mode: str, csv_types: set[str], json_types: set[str]
) -> dict[str, Any]:
    """One side of a capture record; without CaptureContentTypeHeader SageMaker base64-encodes the data."""
    base = content_type.split(";", maxsplit=1)[0].strip().lower()
    encoding = "CSV" if base in csv_types else "JSON" if base in json_types else "BASE64"
    text: str | None = None
    if encoding != "BASE64":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if text is None:
        text = base64.b64encode(data).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}
