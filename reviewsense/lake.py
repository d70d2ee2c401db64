"""Lake operations the commands share: upload a file as an upstream channel would, wait for its ingestion.

``reviewsense ingest``, ``make demo`` and the ingest benchmark feed the lake the same way: a PUT under
``raw/<channel>/`` and then the ingest function's manifest for that object version.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reviewsense.target import Target


def upload_key(path: Path, channel: str, raw_prefix: str) -> str:
    return f"{raw_prefix}{channel}/{path.name}"


def upload(tgt: Target, path: Path, channel: str) -> tuple[str, str]:
    """PUT ``path`` into the raw zone under ``channel``; returns its key and the new version's ETag."""
    key = upload_key(path, channel, tgt.settings.raw_prefix)
    with path.open("rb") as fh:
        response = tgt.client("s3").put_object(Bucket=tgt.settings.lake_bucket, Key=key, Body=fh)
    return key, str(response["ETag"]).strip('"')


def wait_for_ingestion(tgt: Target, keys: dict[str, str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Poll each source's manifest until it records the uploaded version (ETag)."""
    from chalicelib.adapters.s3 import S3ObjectStore
    from chalicelib.domain import lake

    store = S3ObjectStore(tgt.client("s3"))
    s = tgt.settings
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(keys) and time.monotonic() < deadline:
        for key, etag in keys.items():
            if key in done:
                continue
            manifest = store.get_json(
                s.lake_bucket, lake.manifest_key(s.curated_prefix, lake.source_digest(s.lake_bucket, key))
            )
            if manifest and manifest.get("etag") == etag:
                done[key] = manifest
        time.sleep(0.3)
    return done
