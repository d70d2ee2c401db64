"""Small pieces every part of the local SageMaker shares: names, S3 URIs, hyperparameters, archives,
error shapes, the boto3 clients that reach the local cloud, and a job's base environment.

They sit here so that jobs, endpoints and the moto patches use one definition of each (how SageMaker
turns hyperparameters into arguments, which error shape an API returns, where an S3 prefix lands).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HOST = "algo-1"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints"
METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
PROCESSING_ROOT = "/opt/ml/processing"
FAILURE_REASON_MAX = 1024
STDERR_TAIL_LINES = 20
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def utcnow() -> datetime:
    from moto.core.utils import utcnow as moto_utcnow

    return moto_utcnow()


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def decode_hyperparameter(value: Any) -> Any:
    """SageMaker hyperparameters are JSON-encoded strings (``'"abc"'``, ``'3'``); plain strings stay."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _cmd_value(value: Any) -> str:
    """How the SageMaker training toolkit turns a decoded hyperparameter into an argument."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def hyperparameter_args(hyperparameters: dict[str, Any]) -> list[str]:
    """``--key value`` for every non-``sagemaker_*`` hyperparameter, sorted by key like the toolkit."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        if key.startswith("sagemaker_"):
            continue
        args += [f"--{key}" if len(key) > 1 else f"-{key}", _cmd_value(hyperparameters[key])]
    return args


def text_tail(lines: Iterable[str], limit: int = FAILURE_REASON_MAX) -> str:
    text = "\n".join(lines)
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


def extract(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(target, filter="data")


def pack_dir(src: Path) -> bytes:
    """tar.gz of a directory with its files at the archive root (SageMaker's model.tar.gz layout)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(src).as_posix())
    return raw.getvalue()


def has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


class JobError(Exception):
    """A job cannot run (bad input, missing code): it becomes Failed with this message."""


# ---- exceptions in the shapes the SageMaker APIs return -------------------------------------------------


def validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


@functools.cache
def _runtime_exception_class() -> type[Exception]:
    from moto.core.exceptions import ServiceException

    class RuntimeServiceError(ServiceException):
        """Defined outside ``moto.*`` so moto serialises it with the sagemaker-runtime error shapes."""

    return RuntimeServiceError


def runtime_error(code: str, message: str, **attributes: Any) -> Exception:
    exc = _runtime_exception_class()(code, message)
    for name, value in attributes.items():
        setattr(exc, name, value)
    return exc


# ---- the local cloud's clients, with SageMaker's rules for S3 --------------------------------------------


class Clients:
    """boto3 clients for the local cloud, created once and shared by the worker threads."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=region, **_session_credentials())
        self._endpoint = endpoint_url
        self._region = region
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self._endpoint, region_name=self._region
                )
            return self._clients[service]

    # S3, with SageMaker's rules for where downloaded objects land

    def download(self, uri: str, dest: Path, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Every object under the ``uri`` prefix, at its path relative to the prefix's last ``/``."""
        bucket, prefix = split_s3_uri(uri)
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        s3 = self.get("s3")
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                if key.endswith("/") or should_stop():
                    continue
                target = dest / key[len(base) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(target))
                count += 1
        if count == 0:
            raise JobError(f"ClientError: no objects found under {uri}")
        return count

    def upload_dir(self, folder: Path, uri: str) -> int:
        bucket, prefix = split_s3_uri(uri)
        prefix = prefix.rstrip("/")
        s3 = self.get("s3")
        count = 0
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                key = (
                    f"{prefix}/{path.relative_to(folder).as_posix()}"
                    if prefix
                    else path.relative_to(folder).as_posix()
                )
                s3.upload_file(str(path), bucket, key)
                count += 1
        return count

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self.get("s3").put_object(Bucket=bucket, Key=key, Body=data)


def _session_credentials() -> dict[str, str]:
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {}
    return {
        "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def job_env(endpoint_url: str, region: str) -> dict[str, str]:
    """The environment a job or model server starts from: this process's, pointed at the local cloud."""
    env = dict(os.environ)
    env.pop("AWS_PROFILE", None)
    for key, value in LOCAL_CREDENTIALS.items():
        env.setdefault(key, value)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass(frozen=True)
class Workspace:
    """What the manager shares with its jobs and endpoints: clients, folders, environment, threads."""

    clients: Clients
    work_dir: Path
    log_dir: Path
    job_env: Callable[[], dict[str, str]]  # the base environment of a job or model server
    spawn: Callable[..., threading.Thread]  # start a worker thread the manager waits for on shutdown
    on_change: Callable[[], None]  # the moto state changed: save it
