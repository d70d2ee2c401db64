"""The S3 write-through journal in-process: replay, torn writes, compaction and which requests count."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from werkzeug.test import EnvironBuilder

from reviewsense.localcloud.journal import S3Journal, S3WriteThrough

BUCKET = "journal-test"
AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def forget(key: str) -> None:
    """What a snapshot taken before the write would hold: no trace of the key."""
    from moto.s3.models import s3_backends

    s3_backends["123456789012"]["aws"].buckets[BUCKET].keys.pop(key)


def body(s3: Any, key: str) -> bytes | None:
    try:
        data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return data


def test_replay_restores_the_last_state_of_each_key_and_is_idempotent(s3: Any, tmp_path: Path) -> None:
    journal = S3Journal(tmp_path)
    journal.open()
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"first")
    journal.record(BUCKET, ["a"])
    etag = s3.put_object(Bucket=BUCKET, Key="a", Body=b"second")["ETag"]
    journal.record(BUCKET, ["a"])
    s3.put_object(Bucket=BUCKET, Key="b", Body=b"doomed")
    journal.record(BUCKET, ["b"])
    s3.delete_object(Bucket=BUCKET, Key="b")
    journal.record(BUCKET, ["b"])
    journal.close()

    forget("a")
    s3.put_object(Bucket=BUCKET, Key="b", Body=b"in an older snapshot")
    for _ in range(2):
        assert S3Journal(tmp_path).replay() == 4
        assert body(s3, "a") == b"second"
        assert s3.head_object(Bucket=BUCKET, Key="a")["ETag"] == etag
        assert body(s3, "b") is None


def test_a_torn_last_entry_is_ignored(s3: Any, tmp_path: Path) -> None:
    journal = S3Journal(tmp_path)
    journal.open()
    for key in ("kept", "torn"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode() * 100)
        journal.record(BUCKET, [key])
    journal.close()
    [segment] = journal.segments()
    segment.write_bytes(segment.read_bytes()[:-10])  # the crash came in the middle of the write
    forget("kept")
    forget("torn")
    assert S3Journal(tmp_path).replay() == 1
    assert body(s3, "kept") == b"kept" * 100
    assert body(s3, "torn") is None  # never acknowledged: its response waited for the fsync


def test_only_segments_closed_before_a_snapshot_are_discarded(s3: Any, tmp_path: Path) -> None:
    journal = S3Journal(tmp_path)
    journal.open()
    s3.put_object(Bucket=BUCKET, Key="before", Body=b"1")
    journal.record(BUCKET, ["before"])
    closed = journal.rotate()
    s3.put_object(Bucket=BUCKET, Key="during", Body=b"2")  # lands while the snapshot is being taken
    journal.record(BUCKET, ["during"])
    journal.discard(closed)
    assert len(closed) == 1
    assert not closed[0].exists()
    forget("during")
    assert S3Journal(tmp_path).replay() == 1
    assert body(s3, "during") == b"2"


def environ(method: str, path: str, query: str = "", data: bytes = b"") -> dict[str, Any]:
    env: dict[str, Any] = EnvironBuilder(
        method=method,
        path=path,
        query_string=query,
        data=data,
        headers=[("Authorization", AUTH), ("Host", "127.0.0.1:4566")],
    ).get_environ()
    env["REQUEST_URI"] = path + (f"?{query}" if query else "")
    return env


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("PUT", "/lake/raw/a%20b.csv", "", ("lake", ["raw/a b.csv"])),  # PutObject, CopyObject
        ("POST", "/lake/big.bin", "uploadId=1", ("lake", ["big.bin"])),  # CompleteMultipartUpload
        ("DELETE", "/lake/old.csv", "", ("lake", ["old.csv"])),  # DeleteObject
        ("PUT", "/lake/big.bin", "partNumber=1&uploadId=1", None),  # UploadPart: no object yet
        ("POST", "/lake/big.bin", "uploads", None),  # CreateMultipartUpload
        ("DELETE", "/lake/big.bin", "uploadId=1", None),  # AbortMultipartUpload
        ("PUT", "/lake", "", None),  # CreateBucket: left to the snapshot
        ("GET", "/lake/raw/a.csv", "", None),
    ],
)
def test_which_requests_are_journaled(method: str, path: str, query: str, expected: Any) -> None:
    assert (
        S3WriteThrough(None, S3Journal(Path("/nonexistent")))._touched(environ(method, path, query))
        == expected
    )


def test_delete_objects_journals_every_key_and_leaves_the_body_readable() -> None:
    xml = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a.csv</Key></Object>'
        b"<Object><Key>dir/b.csv</Key></Object></Delete>"
    )
    env = environ("POST", "/lake", "delete", xml)
    touched = S3WriteThrough(None, S3Journal(Path("/nonexistent")))._touched(env)
    assert touched == ("lake", ["a.csv", "dir/b.csv"])
    assert env["wsgi.input"].read() == xml


def test_an_unsigned_or_other_service_request_passes_through() -> None:
    env = environ("PUT", "/lake/a.csv")
    env["HTTP_AUTHORIZATION"] = AUTH.replace("/s3/", "/sqs/")
    assert S3WriteThrough(None, S3Journal(Path("/nonexistent")))._touched(env) is None
    env = environ("PUT", "/lake/a.csv")
    del env["HTTP_AUTHORIZATION"]
    env["wsgi.input"] = io.BytesIO(b"")
    assert S3WriteThrough(None, S3Journal(Path("/nonexistent")))._touched(env) is None
