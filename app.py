"""ReviewSense's Chalice app: the Lambda entry points, a few lines each.

Handlers turn the event into a typed input, call one service and return a dict. All logic lives in
``chalicelib``; nothing heavy (torch, transformers, sagemaker, pandas) is imported here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Chalice, CloudWatchEvent

from chalicelib import events
from chalicelib.container import get_container

app = Chalice(app_name="reviewsense")
logger = Logger(service="reviewsense")

RAW_OBJECT_CREATED = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"object": {"key": [{"prefix": "raw/"}]}},
}


@app.on_cw_event(RAW_OBJECT_CREATED, name="ingest")
def ingest(event: CloudWatchEvent) -> dict[str, Any]:
    """S3 upload under ``raw/`` (via EventBridge) -> curated Parquet, quarantine, catalog, event."""
    source = events.source_object_from_eventbridge(event.to_dict())
    logger.append_keys(source_key=source.key)
    result: dict[str, Any] = get_container().ingest_service.ingest(source)
    return result
