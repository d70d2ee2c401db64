"""Write-through journal for the local cloud's S3 objects: an acknowledged write survives a kill -9.

S3 promises that an object is durable once PutObject returns. The local cloud keeps moto's state in
memory and snapshots it to disk shortly after each change (``state.py``), so a crash in between lost
uploads that had already been acknowledged. Here a WSGI middleware sees every S3 object write that
succeeded (PutObject, CopyObject, CompleteMultipartUpload, DeleteObject, DeleteObjects, and the other
object-level writes such as tagging) and, before the response leaves the server, appends the resulting
state of each key it touched to a journal file and fsyncs it. On start the journal is replayed over the
last snapshot; once a snapshot that includes its entries is on disk, the journal is deleted.

An entry says "key K of bucket B now has these versions, the newest being this object" (or "K is
gone"). Replaying it is idempotent, so an entry the snapshot already contains does no harm, and entries
are appended under one lock in the order their states were read, so the last one for a key is its
final state. Bucket-level changes (CreateBucket, notification configuration ...) are not journaled:
they are rare, made by provisioning, and covered by the snapshot.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

logger = logging.getLogger(__name__)

_FRAME = struct.Struct(">II")  # payload length, CRC-32 of the payload
_SEGMENT = re.compile(r"^s3-(\d{10})\.journal$")
_WRITES = {"PUT", "POST", "DELETE"}
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class Entry(NamedTuple):
    account_id: str
    partition: str
    bucket: str
    key: str
    version_ids: list[str]
    newest: Any  # moto's FakeKey or FakeDeleteMarker; None when the key has no versions left


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _find_bucket(name: str) -> tuple[str, str, Any] | None:
    from moto.s3.models import s3_backends

    located = s3_backends.bucket_accounts.get(name)
    if located is not None:
        partition, account_id = located
        bucket = s3_backends[account_id][partition].buckets.get(name)
        if bucket is not None:
            return account_id, partition, bucket
    for account_id, by_partition in list(s3_backends.items()):
        for partition, backend in list(by_partition.items()):
            bucket = backend.buckets.get(name)
            if bucket is not None:
                return account_id, partition, bucket
    return None


def capture(bucket_name: str, key: str) -> Entry | None:
    """The key's current state in moto's S3 backend (None when the bucket does not exist)."""
    found = _find_bucket(bucket_name)
    if found is None:
        return None
    account_id, partition, bucket = found
    versions = list(bucket.keys.getlist(key, []) or [])
    return Entry(
        account_id,
        partition,
        bucket_name,
        key,
        [str(v.version_id) for v in versions],
        versions[-1] if versions else None,
    )


def apply(entry: Entry) -> bool:
    """Make moto's S3 backend hold the entry's state for its key; False if the bucket is missing."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[entry.account_id][entry.partition].buckets.get(entry.bucket)
    if bucket is None:
        logger.warning("journal: bucket %s no longer exists, skipping %s", entry.bucket, entry.key)
        return False
    store = bucket.keys
    known = {str(v.version_id): v for v in store.getlist(entry.key, []) or []}
    if entry.newest is not None:
        known[str(entry.newest.version_id)] = entry.newest
    versions = [known[v] for v in entry.version_ids if v in known]
    if versions:
        store.setlist(entry.key, versions)
    elif entry.key in store:
        store.pop(entry.key)
    return True


def _frames(path: Path) -> Iterator[bytes]:
    """The payloads of a segment; a torn frame at the end (a crash mid-write) ends it."""
    with path.open("rb") as fh:
        while True:
            header = fh.read(_FRAME.size)
            if len(header) < _FRAME.size:
                return
            length, crc = _FRAME.unpack(header)
            payload = fh.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                logger.warning("journal: %s ends with an incomplete entry (ignored)", path.name)
                return
            yield payload


class S3Journal:
    """Append-only, fsynced segments of S3 key states, replayed over the last snapshot on start."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._seq = 0
        self.appended = 0

    def segments(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted(p for p in self.directory.iterdir() if _SEGMENT.match(p.name))

    def open(self) -> None:
        """Start writing after the segments already on disk (call after ``replay``)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = [int(m.group(1)) for p in self.segments() if (m := _SEGMENT.match(p.name))]
        with self._lock:
            self._seq = max(existing, default=0) + 1

    def record(self, bucket: str, keys: Iterable[str]) -> int:
        """Append the current state of ``keys`` and fsync; return how many entries were written."""
        with self._lock:
            payloads = []
            for key in keys:
                entry = capture(bucket, key)
                if entry is not None:
                    payloads.append(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
            if not payloads:
                return 0
            fh = self._current()
            fh.write(b"".join(_FRAME.pack(len(p), zlib.crc32(p)) + p for p in payloads))
            fh.flush()
            os.fsync(fh.fileno())
            self.appended += len(payloads)
            return len(payloads)

    def rotate(self) -> list[Path]:
        """Close the segment being written; return every closed segment (for ``discard`` later)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                self._seq += 1
            return [p for p in self.segments() if int(p.name[3:13]) < self._seq]

    def discard(self, segments: list[Path]) -> None:
        """Delete segments whose entries a durable snapshot now contains."""
        for path in segments:
            path.unlink(missing_ok=True)
        if segments:
            fsync_directory(self.directory)

    def replay(self) -> int:
        """Apply every entry on disk, oldest first; return how many were applied."""
        applied = 0
        for path in self.segments():
            for payload in _frames(path):
                if apply(pickle.loads(payload)):
                    applied += 1
        return applied

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _current(self) -> BinaryIO:
        if self._file is None:
            path = self.directory / f"s3-{self._seq:010d}.journal"
            self._file = path.open("ab")
            fsync_directory(self.directory)  # the new file's name is durable too
        return self._file


# -- the middleware ------------------------------------------------------------------------------------


def _signing_service(environ: dict[str, Any]) -> str | None:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    match = _CREDENTIAL.search(auth)
    if match:
        return match.group(1)
    credential = parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential")
    if credential:
        parts = credential[0].split("/")
        return parts[3] if len(parts) == 5 else None
    return None


def _bucket_and_key(environ: dict[str, Any]) -> tuple[str, str] | None:
    """Bucket and key of the request, parsed as moto parses them (path-style or virtual-hosted)."""
    from moto.s3.responses import S3Response
    from moto.s3.utils import bucket_name_from_url
    from werkzeug.wrappers import Request

    request = Request(environ)
    raw = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "")
    path = unquote(urlsplit(raw).path) if raw else request.path
    if S3Response.subdomain_based_buckets(request):
        bucket = bucket_name_from_url(request.url)
        key = path[1:] if path.startswith("/") else path
    else:
        bucket, _, key = path.lstrip("/").partition("/")
    return (bucket, key) if bucket else None


def _deleted_keys(body: bytes) -> list[str]:
    root = ElementTree.fromstring(body)
    return [el.text or "" for el in root.iter() if el.tag == "Key" or el.tag.endswith("}Key")]


def _object_keys(method: str, key: str, query: dict[str, list[str]]) -> list[str] | None:
    """``[key]`` when the request to one object changes that object, else None."""
    if "uploadId" in query and (method == "DELETE" or "partNumber" in query):
        return None  # UploadPart, AbortMultipartUpload: the object itself does not change
    if method == "POST" and "uploads" in query:
        return None  # CreateMultipartUpload
    return [key]


class S3WriteThrough:
    """WSGI middleware: journal (fsynced) the keys a successful S3 object write touched, then answer."""

    def __init__(self, app: Any, journal: S3Journal) -> None:
        self._app = app
        self._journal = journal

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        keys = self._touched(environ)
        if keys is None:
            return self._app(environ, start_response)
        bucket, names = keys
        statuses: list[str] = []

        def capture_status(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        result = self._app(environ, capture_status)
        if statuses and statuses[-1].startswith("2"):
            self._journal.record(bucket, names)
        return result

    def _touched(self, environ: dict[str, Any]) -> tuple[str, list[str]] | None:
        method = environ.get("REQUEST_METHOD")
        if method not in _WRITES or _signing_service(environ) != "s3":
            return None
        if str(environ.get("PATH_INFO", "")).startswith("/v20180820/"):
            return None  # S3 Control
        target = _bucket_and_key(environ)
        if target is None:
            return None
        bucket, key = target
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        names = _object_keys(method, key, query) if key else self._multi_delete_keys(method, query, environ)
        return None if names is None else (bucket, names)

    def _multi_delete_keys(
        self, method: str, query: dict[str, list[str]], environ: dict[str, Any]
    ) -> list[str] | None:
        """The keys a bucket-level request removes: those of a DeleteObjects body, else none."""
        if method == "POST" and "delete" in query:
            body = self._buffer_body(environ)
            return _deleted_keys(body) if body else None
        return None

    @staticmethod
    def _buffer_body(environ: dict[str, Any]) -> bytes:
        """Read the request body and put it back, so the application still reads all of it."""
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        if length:
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            return b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return bytes(body)
