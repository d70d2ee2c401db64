"""Object store port over an S3 client (works against AWS and the local cloud alike)."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import error_code, is_retryable
from chalicelib.errors import DependencyUnavailableError, ResourceNotFoundError


class ObjectNotFoundError(ResourceNotFoundError, KeyError):
    """The object does not exist (maybe not yet visible, maybe deleted)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    last_modified: datetime
    etag: str
    version_id: str | None


#: Bytes read from S3 per chunk when an object is streamed (bounded memory whatever its size).
STREAM_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ObjectStream:
    """An object whose body is read lazily, one chunk at a time (at most one chunk in memory)."""

    key: str
    chunks: Generator[bytes, None, None]  # close() it to release the connection when stopping early
    content_length: int
    last_modified: datetime
    etag: str
    version_id: str | None


@dataclass(frozen=True)
class ListedObject:
    """One entry of a listing: enough to tell which version of the key is there."""

    key: str
    etag: str
    size: int
    last_modified: datetime


class ObjectStore(Protocol):
    def head(self, bucket: str, key: str) -> dict[str, Any]: ...
    def get(self, bucket: str, key: str) -> StoredObject: ...
    def open(self, bucket: str, key: str) -> ObjectStream: ...
    def put(self, bucket: str, key: str, body: bytes, content_type: str = ...) -> None: ...
    def get_json(self, bucket: str, key: str) -> Any | None: ...
    def put_json(self, bucket: str, key: str, value: Any) -> None: ...
    def delete(self, bucket: str, keys: list[str]) -> None: ...
    def list_objects(self, bucket: str, prefix: str) -> Iterator[ListedObject]: ...


def _translate(exc: ClientError) -> Exception:
    """A missing object (GetObject: ``NoSuchKey``; HeadObject: a bare ``404``) or a retryable error."""
    if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
        return ObjectNotFoundError(str(exc))
    if is_retryable(exc):
        return DependencyUnavailableError(str(exc))
    unexplained: Exception = exc  # botocore is untyped: say what it is
    return unexplained


class S3ObjectStore:
    """``ObjectStore`` backed by a boto3 S3 client."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        try:
            return dict(self._s3.head_object(Bucket=bucket, Key=key))
        except ClientError as exc:
            raise _translate(exc) from exc

    def _get_object(self, bucket: str, key: str) -> Any:
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise _translate(exc) from exc

    def get(self, bucket: str, key: str) -> StoredObject:
        response = self._get_object(bucket, key)
        return StoredObject(
            key=key,
            body=response["Body"].read(),
            last_modified=response["LastModified"],
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=response.get("VersionId"),
        )

    def open(self, bucket: str, key: str) -> ObjectStream:
        """GetObject without reading the body: iterate ``chunks`` to stream it."""
        response = self._get_object(bucket, key)
        return ObjectStream(
            key=key,
            chunks=_chunks(response["Body"]),
            content_length=int(response.get("ContentLength", 0)),
            last_modified=response["LastModified"],
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=response.get("VersionId"),
        )

    def put(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def get_json(self, bucket: str, key: str) -> Any | None:
        try:
            return json.loads(self.get(bucket, key).body)
        except ObjectNotFoundError:
            return None

    def put_json(self, bucket: str, key: str, value: Any) -> None:
        self.put(bucket, key, json.dumps(value, default=str, sort_keys=True).encode(), "application/json")

    def delete(self, bucket: str, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk]})

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ListedObject]:
        """Every object under ``prefix``, page by page (ListObjectsV2: needs s3:ListBucket)."""
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield ListedObject(
                        key=obj["Key"],
                        etag=str(obj.get("ETag", "")).strip('"'),
                        size=int(obj.get("Size", 0)),
                        last_modified=obj["LastModified"],
                    )
        except ClientError as exc:
            raise _translate(exc) from exc


def _chunks(body: Any) -> Generator[bytes, None, None]:
    """The body's chunks; the connection goes back to the pool even when the reader stops early."""
    try:
        yield from body.iter_chunks(STREAM_CHUNK_BYTES)
    finally:
        body.close()
