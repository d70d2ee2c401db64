"""One frozen settings object, built once from the environment.

Every name that differs between the local cloud and AWS (bucket, tables, topics, endpoint) lives
here, so handlers, services and adapters never read ``os.environ`` themselves. Tests build
``Settings`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

APP_NAME = "reviewsense"


@dataclass(frozen=True)
class Settings:
    """Configuration of one deployment stage (``local``, ``dev``, ``prod`` ...)."""

    stage: str = "local"
    region: str = "us-east-1"
    lake_bucket: str = "reviewsense-lake"
    raw_prefix: str = "raw/"
    curated_prefix: str = "curated/"
    quarantine_prefix: str = "quarantine/"
    glue_database: str = "reviewsense"
    reviews_table: str = "reviews"
    quarantine_table: str = "quarantine"
    idempotency_table: str = "reviewsense-local-idempotency"
    event_bus: str = "default"
    event_source: str = "reviewsense.ingest"
    alerts_topic_arn: str = ""
    #: Largest accepted value of any single field, in characters; longer records are quarantined.
    max_field_chars: int = 20_000
    #: Largest object the ingest function reads into memory, in bytes; larger ones are quarantined whole.
    max_object_bytes: int = 512 * 1024 * 1024
    #: ``duckdb`` (Parquet read straight from S3) or ``athena`` (awswrangler) for ``reviewsense query``.
    query_engine: str = "duckdb"
    athena_workgroup: str = "primary"
    endpoint_url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def function_prefix(self) -> str:
        return f"{APP_NAME}-{self.stage}-"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``REVIEWSENSE_*`` variables (set per stage in ``.chalice/config.json``)."""
        e = os.environ if env is None else env
        stage = e.get("REVIEWSENSE_STAGE", cls.stage)
        return cls(
            stage=stage,
            region=e.get("AWS_REGION", e.get("AWS_DEFAULT_REGION", cls.region)),
            lake_bucket=e.get("REVIEWSENSE_LAKE_BUCKET", cls.lake_bucket),
            glue_database=e.get("REVIEWSENSE_GLUE_DATABASE", cls.glue_database),
            idempotency_table=e.get("REVIEWSENSE_IDEMPOTENCY_TABLE", f"{APP_NAME}-{stage}-idempotency"),
            event_bus=e.get("REVIEWSENSE_EVENT_BUS", cls.event_bus),
            alerts_topic_arn=e.get("REVIEWSENSE_ALERTS_TOPIC_ARN", ""),
            max_field_chars=int(e.get("REVIEWSENSE_MAX_FIELD_CHARS", cls.max_field_chars)),
            max_object_bytes=int(e.get("REVIEWSENSE_MAX_OBJECT_BYTES", cls.max_object_bytes)),
            query_engine=e.get("REVIEWSENSE_QUERY_ENGINE", cls.query_engine),
            athena_workgroup=e.get("REVIEWSENSE_ATHENA_WORKGROUP", cls.athena_workgroup),
            endpoint_url=e.get("AWS_ENDPOINT_URL") or None,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (Lambda containers build them once per cold start)."""
    return Settings.from_env()
