"""Where things live in the lake: pure functions from object keys to zones, channels and partitions.

Output keys are derived deterministically from the source object, so a redelivered event rewrites
the same curated and quarantine files instead of appending duplicates.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_CHANNEL = "reviews"


@dataclass(frozen=True)
class SourceObject:
    """An object that landed in the raw zone, identified as precisely as the event allows."""

    bucket: str
    key: str
    etag: str = ""
    version_id: str | None = None
    size: int | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.bucket}/{self.key}#{self.version_id or self.etag}"


def decode_event_key(key: str) -> str:
    """S3 notifications URL-encode keys (``+`` for spaces); undo it."""
    return unquote_plus(key)


def channel_for_key(key: str, raw_prefix: str = "raw/") -> str:
    """``raw/email/2024/x.jsonl`` -> ``email``; files directly under ``raw/`` belong to ``reviews``."""
    rest = key[len(raw_prefix) :] if key.startswith(raw_prefix) else key
    parts = rest.split("/")
    if len(parts) < 2:
        return DEFAULT_CHANNEL
    channel = parts[0].lower()
    return channel if _CHANNEL.match(channel) else DEFAULT_CHANNEL


def is_raw_key(key: str, raw_prefix: str = "raw/") -> bool:
    return key.startswith(raw_prefix) and not key.endswith("/")


def source_digest(bucket: str, key: str) -> str:
    """Short stable name for everything derived from one source object."""
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:20]


def partition_path(prefix: str, table: str, channel: str, ingest_date: str) -> str:
    return f"{prefix}{table}/channel={channel}/ingest_date={ingest_date}/"


def ingest_date(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d")


def curated_key(prefix: str, table: str, channel: str, landed_at: datetime, digest: str) -> str:
    return f"{partition_path(prefix, table, channel, ingest_date(landed_at))}{digest}.parquet"


def manifest_key(prefix: str, digest: str) -> str:
    """Records which outputs a source object produced, so a re-upload replaces them."""
    return f"{prefix}_manifests/{digest}.json"
