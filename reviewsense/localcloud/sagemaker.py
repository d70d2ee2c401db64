"""Local stand-ins for SageMaker compute: the same API calls as on AWS, and the work really happens.

moto 5.2.5 stores training and processing jobs but runs nothing (they are "Completed" at once and no
``model.tar.gz`` appears), lacks ``StopTrainingJob`` and ``UpdateEndpoint``, and its ``InvokeEndpoint``
returns a static body. The training pipeline (Step Functions ``aws-sdk:sagemaker:*`` tasks), the
watchdog and the scoring Lambdas must work unchanged on the local cloud, so this module patches moto's
SageMaker backend and response classes and the sagemaker-runtime response (pinned to moto 5.2.5, like
``extensions.py``) and hands the work to ``LocalSageMaker``:

* training jobs run the script-mode entry point from ``sagemaker_submit_directory`` in a subprocess with
  the SageMaker environment (channels downloaded from S3, ``SM_*`` variables, hyperparameters as
  ``--key value``); output lines are matched against the job's metric definitions and published to
  CloudWatch where SageMaker publishes them; the model directory becomes ``model.tar.gz`` in S3;
* processing jobs download their inputs, run the container entry point with ``/opt/ml/processing``
  mapped to a work directory, and upload their outputs;
* endpoints serve every production variant from its own process (``endpoint_server.py``) loading the
  model's ``code/inference.py`` handler, with weighted routing, data capture to S3 and blue/green updates.

Creating a job or an endpoint returns at once; the work happens in background threads that talk to the
local cloud through boto3 like any other client. ``build_sourcedir`` packs the repository's training code
the way the pipeline uploads it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import gzip
import hashlib
import io
import json
import logging
import math
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

HOST = "algo-1"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints"
METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
PROCESSING_ROOT = "/opt/ml/processing"
FAILURE_REASON_MAX = 1024
STDERR_TAIL_LINES = 20
ENDPOINT_SERVER = Path(__file__).with_name("endpoint_server.py")
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_ACTIVE_ENDPOINT_STATUSES = ("InService", "Creating", "Updating", "SystemUpdating")


# ---- the training code as SageMaker receives it -------------------------------------------------------


def build_sourcedir(project_root: Path) -> bytes:
    """``sourcedir.tar.gz`` for script mode: ``training/``, ``chalicelib/__init__.py`` and ``domain/``.

    The bytes are reproducible (sorted entries, zeroed times and owners), so an unchanged tree gives the
    same S3 object. Run it with ``sagemaker_program = "training/train.py"`` (or featurize / evaluate).
    """
    root = Path(project_root)
    files: list[Path] = []
    for folder in (root / "training", root / "chalicelib" / "domain"):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: not a ReviewSense checkout")
        files.extend(p for p in folder.rglob("*") if p.is_file())
    files.append(root / "chalicelib" / "__init__.py")
    wanted = sorted(
        {p for p in files if "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")},
        key=lambda p: p.relative_to(root).as_posix(),
    )
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in wanted:
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


# ---- small helpers -------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    from moto.core.utils import utcnow

    return utcnow()


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _decode_hyperparameter(value: Any) -> Any:
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


def _tail(lines: Iterable[str], limit: int = FAILURE_REASON_MAX) -> str:
    text = "\n".join(lines)
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]


def _extract(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(target, filter="data")


def _pack_dir(src: Path) -> bytes:
    """tar.gz of a directory with its files at the archive root (SageMaker's model.tar.gz layout)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(src).as_posix())
    return raw.getvalue()


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


class JobError(Exception):
    """A job cannot run (bad input, missing code): it becomes Failed with this message."""


# ---- exceptions in the shapes the SageMaker APIs return -------------------------------------------------


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message=message)


@functools.cache
def _runtime_exception_class() -> type[Exception]:
    from moto.core.exceptions import ServiceException

    class RuntimeServiceError(ServiceException):
        """Defined outside ``moto.*`` so moto serialises it with the sagemaker-runtime error shapes."""

    return RuntimeServiceError


def _runtime_error(code: str, message: str, **attributes: Any) -> Exception:
    exc = _runtime_exception_class()(code, message)
    for name, value in attributes.items():
        setattr(exc, name, value)
    return exc


# ---- CloudWatch Logs + metrics, buffered -------------------------------------------------------------------


class _Telemetry:
    """Sends a job's log lines to CloudWatch Logs and its metrics to CloudWatch, in batches (best effort)."""

    def __init__(self, clients: _Clients, log_group: str, log_stream: str, host: str | None = None) -> None:
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


class _Clients:
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


# ---- running one job's process -------------------------------------------------------------------------


@dataclass
class _Run:
    """A job's control block: the stop request and the process once it has started."""

    kind: str
    name: str
    stop_requested: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""
    proc: subprocess.Popen[str] | None = None
    thread: threading.Thread | None = None

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            self.stop_requested.set()


@dataclass
class _Outcome:
    returncode: int | None
    stopped: str  # "" = ran to its end; else why it was stopped
    stderr_tail: list[str]


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the job runs in its own session: its children go too


def _run_process(
    run: _Run,
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    telemetry: _Telemetry,
    on_line: Callable[[str], None],
    max_runtime_s: float | None,
    stop_grace_s: float,
) -> _Outcome:
    """Run ``cmd``, stream both outputs to the log file, CloudWatch Logs and ``on_line``; honour stops."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    any_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)  # when a script reports its error on stdout
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    run.proc = proc

    def pump(stream: Any, name: str) -> None:
        for raw in stream:
            lines.put((name, raw.rstrip("\n")))
        lines.put((name, None))

    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + max_runtime_s if max_runtime_s else None
    stopped = ""
    kill_at: float | None = None
    exited_at: float | None = None
    open_streams = 2
    last_flush = time.monotonic()
    with log_path.open("a", encoding="utf-8") as log_file:
        while open_streams:
            try:
                stream, text = lines.get(timeout=0.2)
            except queue.Empty:
                stream, text = "", ""
            else:
                if text is None:
                    open_streams -= 1
                else:
                    log_file.write(text + "\n")
                    telemetry.line(text)
                    any_tail.append(text)
                    if stream == "stderr":
                        tail.append(text)
                    on_line(text)
            now = time.monotonic()
            if not stopped:
                if run.stop_requested.is_set():
                    stopped = run.stop_reason or "StopRequested"
                elif deadline is not None and now > deadline:
                    stopped = "MaxRuntimeExceeded"
                if stopped:
                    _signal_group(proc, signal.SIGTERM)  # SageMaker: SIGTERM, then SIGKILL after a grace
                    kill_at = now + stop_grace_s
            if kill_at is not None and now > kill_at and proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                kill_at = None
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 5.0:  # a leftover child holds the pipes open
                _signal_group(proc, signal.SIGKILL)
                break
            if now - last_flush > 1.0:
                log_file.flush()
                telemetry.flush()
                last_flush = now
    returncode = proc.wait()
    _signal_group(proc, signal.SIGKILL)  # leftovers of a job that exited but left children behind
    telemetry.flush()
    return _Outcome(returncode=returncode, stopped=stopped, stderr_tail=list(tail or any_tail))


# ---- endpoints -------------------------------------------------------------------------------------------


class VariantServer:
    """One production variant: an ``endpoint_server.py`` process on 127.0.0.1 with a free port."""

    def __init__(self, variant: str, model_dir: Path, env: dict[str, str], log_path: Path) -> None:
        self.variant = variant
        self.model_dir = model_dir
        self.env = env
        self.log_path = log_path
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        port_file = self.log_path.with_suffix(f".{uuid.uuid4().hex[:8]}.port")
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ENDPOINT_SERVER),
                    "--model-dir",
                    str(self.model_dir),
                    "--port-file",
                    str(port_file),
                ],
                cwd=self.model_dir,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        try:
            while not port_file.exists():
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"variant {self.variant}: the model server exited with code {self.proc.returncode}:\n"
                        + _tail(self._log_tail(), 800)
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"variant {self.variant}: the model server did not start in {timeout_s:.0f} s"
                    )
                time.sleep(0.1)
            self.port = int(port_file.read_text())
        except BaseException:
            self.stop()
            raise
        finally:
            port_file.unlink(missing_ok=True)
        if not self.ping():
            self.stop()
            raise RuntimeError(f"variant {self.variant}: /ping did not answer 200")

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=5) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def invoke(self, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[int, bytes, str]:
        request = urllib.request.Request(f"{self.url}/invocations", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return int(response.status), response.read(), str(response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as err:
            return int(err.code), err.read(), str(err.headers.get("Content-Type", ""))

    def stop(self, timeout_s: float = 5.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout_s)

    def _log_tail(self) -> list[str]:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[
                -STDERR_TAIL_LINES:
            ]
        except OSError:
            return []


@dataclass
class _Variant:
    name: str
    model_name: str
    server: VariantServer


@dataclass
class _Deployment:
    config_name: str
    variants: list[_Variant]
    capture: dict[str, Any]
    inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        for variant in self.variants:
            variant.server.stop()


@dataclass
class _EndpointState:
    account: str
    region: str
    name: str
    generation: int = 0
    active: _Deployment | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)


@dataclass
class InvokeResult:
    body: bytes
    content_type: str
    variant: str


class _CaptureWriter:
    """Data capture: JSON Lines records buffered per endpoint/variant/hour, flushed to S3 every second."""

    def __init__(self, clients: _Clients, flush_s: float = 1.0) -> None:
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


# ---- the manager ---------------------------------------------------------------------------------------


class LocalSageMaker:
    """Owns the local cloud's running training/processing jobs and endpoint variant servers.

    The moto objects stay the source of truth for what the APIs return: the workers update their
    status fields in place, so Describe* calls (and the saved state) show the real progress.
    """

    def __init__(
        self,
        endpoint_url: str,
        home: Path,
        region: str = "us-east-1",
        *,
        stop_grace_s: float = 10.0,
        server_start_timeout_s: float = 300.0,
        invoke_timeout_s: float = 60.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.home = Path(home)
        self.region = region
        self.work_dir = self.home / "sagemaker"
        self.log_dir = self.home / "logs" / "sagemaker"
        self.stop_grace_s = stop_grace_s
        self.server_start_timeout_s = server_start_timeout_s
        self.invoke_timeout_s = invoke_timeout_s
        self._on_change = on_change or (lambda: None)
        self.clients = _Clients(endpoint_url, region)
        self._runs: dict[tuple[str, str, str, str], _Run] = {}
        self._endpoints: dict[tuple[str, str, str], _EndpointState] = {}
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        self._threads: list[threading.Thread] = []
        self._servers: list[VariantServer] = []  # every server started, so none outlives the local cloud
        self._capture = _CaptureWriter(self.clients)
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------------

    def resume(self) -> None:
        """After a restart: running jobs become Failed; endpoints that were serving are served again."""
        from moto.sagemaker.models import sagemaker_backends

        for regions in list(dict.values(sagemaker_backends)):
            for backend in list(dict.values(regions)):
                reason = "the local cloud stopped while this job was running; start it again"
                for job in list(backend.training_jobs.values()):
                    if job.training_job_status in ("InProgress", "Stopping"):
                        self._finish_training(job, "Failed", "Failed", reason, failure_reason=reason)
                for pjob in list(backend.processing_jobs.values()):
                    if pjob.processing_job_status in ("InProgress", "Stopping"):
                        self._finish_processing(pjob, "Failed", failure_reason=reason)
                for endpoint in list(backend.endpoints.values()):
                    if endpoint.endpoint_status in _ACTIVE_ENDPOINT_STATUSES:
                        self.deploy(backend, endpoint, endpoint.endpoint_config_name, mode="resume")

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop running jobs (they end Stopped) and every variant server; flush data capture."""
        self._closed = True
        with self._lock:
            runs = list(self._runs.values())
            states = list(self._endpoints.values())
        for run in runs:
            run.request_stop("the local cloud was stopped")
        deadline = time.monotonic() + timeout_s
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for thread in list(self._threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for run in runs:
            if run.proc is not None and run.proc.poll() is None:
                _signal_group(run.proc, signal.SIGKILL)
        for state in states:
            with state.changed:
                state.active = None
                state.generation += 1
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        self._capture.close()

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    # -- training jobs ---------------------------------------------------------------------------------

    def submit_training_job(self, backend: Any, job: Any) -> None:
        now = _utcnow()
        job.training_job_status = "InProgress"
        job.secondary_status = "Starting"
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": now, "StatusMessage": "Preparing the instances for training"}
        ]
        job.final_metric_data_list = None
        job.model_artifacts = None
        job.training_start_time = None
        job.training_end_time = None
        job.failure_reason = None
        job.last_modified_time = now
        self._launch("training", backend, job.training_job_name, self._run_training, job)

    def _launch(self, kind: str, backend: Any, name: str, target: Callable[..., None], job: Any) -> None:
        """Track the job's run and start its worker thread."""
        run = _Run(kind, name)
        with self._lock:
            self._runs[(kind, backend.account_id, backend.region_name, name)] = run
        run.thread = self._spawn(target, run, job, name=f"{kind}-{name}")

    def stop_training_job(self, backend: Any, job: Any) -> None:
        run = self._runs.get(("training", backend.account_id, backend.region_name, job.training_job_name))
        self._transition(job, "Stopping", "Stopping the training job")
        job.training_job_status = "Stopping"
        if run is None or run.thread is None or not run.thread.is_alive():
            self._finish_training(job, "Stopped", "Stopped", "Training job stopped")
            return
        run.request_stop("StopTrainingJob")

    def _transition(self, job: Any, status: str, message: str) -> None:
        now = _utcnow()
        transitions = list(job.secondary_status_transitions or [])
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1] = {**transitions[-1], "EndTime": now}
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job.secondary_status_transitions = transitions
        job.secondary_status = status
        job.last_modified_time = now
        self._on_change()
        self._emit_state_change(job)

    def _emit_state_change(self, job: Any) -> None:
        """EventBridge "SageMaker Training Job State Change", as SageMaker sends (the watchdog listens)."""
        if not hasattr(job, "training_job_name"):
            return
        detail = {
            "TrainingJobName": job.training_job_name,
            "TrainingJobStatus": job.training_job_status,
            "SecondaryStatus": job.secondary_status,
        }
        try:
            self.clients.get("events").put_events(
                Entries=[
                    {
                        "Source": "aws.sagemaker",
                        "DetailType": "SageMaker Training Job State Change",
                        "Detail": json.dumps(detail),
                    }
                ]
            )
        except Exception:  # an event is best effort, as on AWS; the watchdog also runs on a schedule
            log.debug("could not publish the state change of %s", job.training_job_name, exc_info=True)

    def _finish_training(
        self, job: Any, status: str, secondary: str, message: str, failure_reason: str | None = None
    ) -> None:
        self._transition(job, secondary, message)
        now = _utcnow()
        transitions = list(job.secondary_status_transitions)
        transitions[-1] = {**transitions[-1], "EndTime": now}
        job.secondary_status_transitions = transitions
        job.training_end_time = now
        started = job.training_start_time or job.creation_time
        seconds = max(1, int((now - started).total_seconds()))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
        job.failure_reason = failure_reason[-FAILURE_REASON_MAX:] if failure_reason else None
        job.training_job_status = status
        self._on_change()
        self._emit_state_change(job)

    def _run_training(self, run: _Run, job: Any) -> None:
        name = job.training_job_name
        work = self.work_dir / "training" / name
        shutil.rmtree(work, ignore_errors=True)
        log_path = self.log_dir / f"{name}.log"
        log_path.unlink(missing_ok=True)
        telemetry = _Telemetry(self.clients, TRAINING_LOG_GROUP, f"{name}/{HOST}", host=f"{name}/{HOST}")
        try:
            outcome, model_dir, output_dir = self._train(run, job, work, log_path, telemetry)
        except JobError as exc:
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=str(exc))
            return
        except Exception as exc:
            log.exception("training job %s", name)
            reason = f"InternalServerError: {type(exc).__name__}: {exc}"
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=reason)
            return
        if outcome is None:  # stopped before the process started
            self._finish_training(job, "Stopped", "Stopped", f"Training job stopped: {run.stop_reason}")
            return
        if not outcome.stopped and outcome.returncode != 0:
            reason = (
                f"AlgorithmError: ExecuteUserScriptError:\nExitCode {outcome.returncode}\n"
                f'ErrorMessage "{_tail(outcome.stderr_tail, FAILURE_REASON_MAX - 80)}"'
            )
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=reason)
            return
        # ran to the end, or was stopped: SageMaker uploads what the script saved in both cases
        try:
            if _has_files(model_dir) or not outcome.stopped:
                self._transition(job, "Uploading", "Uploading generated training model")
                prefix = f"{str(job.output_data_config['S3OutputPath']).rstrip('/')}/{name}/output"
                self.clients.put(f"{prefix}/model.tar.gz", _pack_dir(model_dir))
                if _has_files(output_dir):
                    self.clients.put(f"{prefix}/output.tar.gz", _pack_dir(output_dir))
                job.model_artifacts = {"S3ModelArtifacts": f"{prefix}/model.tar.gz"}
        except Exception as exc:
            reason = f"ClientError: could not upload the model artifacts: {exc}"
            self._finish_training(job, "Failed", "Failed", "Training job failed", failure_reason=reason)
            return
        if outcome.stopped == "MaxRuntimeExceeded":
            self._finish_training(
                job, "Stopped", "MaxRuntimeExceeded", "Job stopped because it exceeded MaxRuntimeInSeconds"
            )
        elif outcome.stopped:
            self._finish_training(job, "Stopped", "Stopped", f"Training job stopped: {outcome.stopped}")
        else:
            self._finish_training(job, "Completed", "Completed", "Training job completed")

    def _train(
        self, run: _Run, job: Any, work: Path, log_path: Path, telemetry: _Telemetry
    ) -> tuple[_Outcome | None, Path, Path]:
        name = job.training_job_name
        input_dir, model_dir, output_dir = work / "input", work / "model", work / "output" / "data"
        code_dir = work / "code"
        for folder in (input_dir / "config", model_dir, output_dir, code_dir):
            folder.mkdir(parents=True, exist_ok=True)
        job.training_start_time = _utcnow()
        self._transition(job, "Downloading", "Downloading input data")
        channels: dict[str, Path] = {}
        for channel in job.input_data_config or []:
            channel_name = str(channel["ChannelName"])
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise JobError(f"ClientError: channel {channel_name}: only S3DataSource channels run locally")
            channels[channel_name] = input_dir / "data" / channel_name
            self.clients.download(str(source["S3Uri"]), channels[channel_name], run.stop_requested.is_set)
        raw_hps = dict(job.hyper_parameters or {})
        decoded = {k: _decode_hyperparameter(v) for k, v in raw_hps.items()}
        program = decoded.get("sagemaker_program")
        submit = decoded.get("sagemaker_submit_directory")
        if not program or not submit:
            raise JobError(
                "ClientError: the local cloud runs script mode only: hyperparameters sagemaker_program and "
                "sagemaker_submit_directory (s3://.../sourcedir.tar.gz) are required"
            )
        archive = work / "sourcedir.tar.gz"
        bucket, key = split_s3_uri(str(submit))
        try:
            self.clients.get("s3").download_file(bucket, key, str(archive))
        except Exception as exc:
            raise JobError(f"ClientError: cannot download {submit}: {exc}") from exc
        _extract(archive, code_dir)
        if not (code_dir / str(program)).is_file():
            raise JobError(f"ClientError: {program} is not in {submit}")
        hps = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
        resource_config = {"current_host": HOST, "hosts": [HOST], "network_interface_name": "eth0"}
        input_data_config = {
            str(c["ChannelName"]): {k: v for k, v in c.items() if k in ("ContentType", "TrainingInputMode")}
            for c in job.input_data_config or []
        }
        (input_dir / "config" / "hyperparameters.json").write_text(json.dumps(raw_hps))
        (input_dir / "config" / "resourceconfig.json").write_text(json.dumps(resource_config))
        (input_dir / "config" / "inputdataconfig.json").write_text(json.dumps(input_data_config))
        training_env = {
            "additional_framework_parameters": {},
            "channel_input_dirs": {k: str(v) for k, v in channels.items()},
            "current_host": HOST,
            "hosts": [HOST],
            "hyperparameters": hps,
            "input_config_dir": str(input_dir / "config"),
            "input_data_config": input_data_config,
            "input_dir": str(input_dir),
            "is_master": True,
            "job_name": name,
            "log_level": 20,
            "master_hostname": HOST,
            "model_dir": str(model_dir),
            "module_dir": str(submit),
            "module_name": Path(str(program)).stem,
            "network_interface_name": "eth0",
            "num_cpus": os.cpu_count() or 1,
            "num_gpus": 0,
            "output_data_dir": str(output_dir),
            "output_dir": str(work / "output"),
            "resource_config": resource_config,
            "user_entry_point": str(program),
        }
        env = self._job_env()
        env.update({str(k): str(v) for k, v in (getattr(job, "environment", None) or {}).items()})
        env.update(
            {
                "SM_MODEL_DIR": str(model_dir),
                "SM_CHANNELS": json.dumps(sorted(channels)),
                "SM_OUTPUT_DATA_DIR": str(output_dir),
                "SM_OUTPUT_DIR": str(work / "output"),
                "SM_INPUT_DIR": str(input_dir),
                "SM_INPUT_CONFIG_DIR": str(input_dir / "config"),
                "SM_HPS": json.dumps(hps),
                "SM_NUM_CPUS": str(os.cpu_count() or 1),
                "SM_NUM_GPUS": "0",
                "SM_CURRENT_HOST": HOST,
                "SM_HOSTS": json.dumps([HOST]),
                "SM_USER_ENTRY_POINT": str(program),
                "SM_MODULE_DIR": str(submit),
                "SM_TRAINING_ENV": json.dumps(training_env),
                "TRAINING_JOB_NAME": name,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(code_dir), env.get("PYTHONPATH", "")])),
            }
        )
        for channel_name, path in channels.items():
            env[f"SM_CHANNEL_{channel_name.upper()}"] = str(path)
        for key_, value in hps.items():
            env[f"SM_HP_{key_.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        if run.stop_requested.is_set():
            return None, model_dir, output_dir
        definitions = [
            (str(d["Name"]), re.compile(str(d["Regex"])))
            for d in (job.algorithm_specification or {}).get("MetricDefinitions") or []
        ]
        latest: dict[str, tuple[float, datetime]] = {}

        def on_line(text: str) -> None:
            for metric, regex in definitions:
                match = regex.search(text)
                if match is None:
                    continue
                try:
                    value = float(match.group(1) if match.groups() else match.group(0))
                except ValueError:
                    continue
                if not math.isfinite(value):  # CloudWatch rejects NaN / infinity, so SageMaker drops them
                    continue
                telemetry.metric(metric, value, datetime.now(UTC))
                latest[metric] = (value, _utcnow())
                job.final_metric_data_list = [
                    {"MetricName": k, "Value": v, "Timestamp": t} for k, (v, t) in sorted(latest.items())
                ]

        self._transition(job, "Training", "Training image download completed. Training in progress.")
        max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        outcome = _run_process(
            run,
            [sys.executable, str(program), *hyperparameter_args(decoded)],
            cwd=code_dir,
            env=env,
            log_path=log_path,
            telemetry=telemetry,
            on_line=on_line,
            max_runtime_s=float(max_runtime) if max_runtime else None,
            stop_grace_s=self.stop_grace_s,
        )
        return outcome, model_dir, output_dir

    def _job_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("AWS_PROFILE", None)
        for key, value in LOCAL_CREDENTIALS.items():
            env.setdefault(key, value)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # -- processing jobs ------------------------------------------------------------------------------

    def submit_processing_job(self, backend: Any, job: Any) -> None:
        now = _utcnow()
        job.processing_job_status = "InProgress"
        job.processing_start_time = now
        job.processing_end_time = None
        job.failure_reason = None
        job.exit_message = None
        job.last_modified_time = now
        self._launch("processing", backend, job.processing_job_name, self._run_processing, job)

    def stop_processing_job(self, backend: Any, job: Any) -> None:
        run = self._runs.get(("processing", backend.account_id, backend.region_name, job.processing_job_name))
        job.processing_job_status = "Stopping"
        if run is None or run.thread is None or not run.thread.is_alive():
            self._finish_processing(job, "Stopped")
            return
        run.request_stop("StopProcessingJob")

    def _finish_processing(
        self, job: Any, status: str, failure_reason: str | None = None, exit_message: str | None = None
    ) -> None:
        now = _utcnow()
        job.processing_end_time = now
        job.last_modified_time = now
        job.failure_reason = failure_reason[-FAILURE_REASON_MAX:] if failure_reason else None
        job.exit_message = exit_message
        job.processing_job_status = status
        self._on_change()

    def _run_processing(self, run: _Run, job: Any) -> None:
        name = job.processing_job_name
        work = self.work_dir / "processing" / name
        shutil.rmtree(work, ignore_errors=True)
        log_path = self.log_dir / f"{name}.log"
        log_path.unlink(missing_ok=True)
        telemetry = _Telemetry(self.clients, PROCESSING_LOG_GROUP, f"{name}/{HOST}")
        try:
            outcome = self._process(run, job, work, log_path, telemetry)
        except JobError as exc:
            self._finish_processing(job, "Failed", failure_reason=str(exc))
            return
        except Exception as exc:
            log.exception("processing job %s", name)
            self._finish_processing(
                job, "Failed", failure_reason=f"InternalServerError: {type(exc).__name__}: {exc}"
            )
            return
        if outcome is None:
            self._finish_processing(job, "Stopped")
        elif outcome.stopped:
            self._finish_processing(job, "Stopped", exit_message=outcome.stopped)
        elif outcome.returncode != 0:
            tail = _tail(outcome.stderr_tail, FAILURE_REASON_MAX - 40)
            reason = f"AlgorithmError: ExitCode {outcome.returncode}\n{tail}"
            self._finish_processing(job, "Failed", failure_reason=reason)
        else:
            try:
                for output in (job.processing_output_config or {}).get("Outputs") or []:
                    target = output.get("S3Output")
                    if target:
                        self.clients.upload_dir(
                            self._map_processing_path(work, target["LocalPath"]), target["S3Uri"]
                        )
            except Exception as exc:
                self._finish_processing(
                    job, "Failed", failure_reason=f"ClientError: uploading outputs failed: {exc}"
                )
                return
            self._finish_processing(job, "Completed")

    @staticmethod
    def _map_processing_path(work: Path, local_path: str) -> Path:
        return work / local_path.lstrip("/")

    def _process(
        self, run: _Run, job: Any, work: Path, log_path: Path, telemetry: _Telemetry
    ) -> _Outcome | None:
        root = work / PROCESSING_ROOT.lstrip("/")
        root.mkdir(parents=True, exist_ok=True)

        def rewrite(value: str) -> str:
            return value.replace(PROCESSING_ROOT, str(root))

        for item in job.processing_inputs or []:
            source = item.get("S3Input")
            if not source:
                raise JobError(f"ClientError: input {item.get('InputName')}: only S3Input inputs run locally")
            self.clients.download(
                str(source["S3Uri"]),
                self._map_processing_path(work, str(source["LocalPath"])),
                run.stop_requested.is_set,
            )
        for output in (job.processing_output_config or {}).get("Outputs") or []:
            if output.get("S3Output"):
                self._map_processing_path(work, str(output["S3Output"]["LocalPath"])).mkdir(
                    parents=True, exist_ok=True
                )
        app = job.app_specification or {}
        cmd = [
            rewrite(str(x))
            for x in [*(app.get("ContainerEntrypoint") or []), *(app.get("ContainerArguments") or [])]
        ]
        if not app.get("ContainerEntrypoint"):
            raise JobError(
                "ClientError: AppSpecification.ContainerEntrypoint is required locally "
                "(an image's own entry point cannot run without its container)"
            )
        if _PYTHON.match(Path(cmd[0]).name):
            cmd[0] = sys.executable
        env = self._job_env()
        env.update({str(k): rewrite(str(v)) for k, v in (getattr(job, "environment", None) or {}).items()})
        if run.stop_requested.is_set():
            return None
        max_runtime = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        return _run_process(
            run,
            cmd,
            cwd=work,
            env=env,
            log_path=log_path,
            telemetry=telemetry,
            on_line=lambda _text: None,
            max_runtime_s=float(max_runtime) if max_runtime else None,
            stop_grace_s=self.stop_grace_s,
        )

    # -- endpoints -------------------------------------------------------------------------------------

    def _state(self, account: str, region: str, name: str) -> _EndpointState:
        with self._lock:
            key = (account, region, name)
            if key not in self._endpoints:
                self._endpoints[key] = _EndpointState(account, region, name)
            return self._endpoints[key]

    def deploy(self, backend: Any, endpoint: Any, config_name: str, mode: str, retain: bool = False) -> None:
        """Start the variant servers of ``config_name`` in the background, then switch the endpoint to them.

        ``mode`` is ``create`` (Creating → InService | Failed), ``update`` (Updating → InService; the
        old servers keep serving until the switch, and on failure) or ``resume`` (after a restart).
        """
        state = self._state(backend.account_id, backend.region_name, endpoint.endpoint_name)
        with state.changed:
            state.generation += 1
            generation = state.generation
        if mode == "create":
            endpoint.endpoint_status = "Creating"
        elif mode == "update":
            endpoint.endpoint_status = "Updating"
            endpoint.pending_deployment_summary = {"EndpointConfigName": config_name, "StartTime": _utcnow()}
        spec = self._deployment_spec(backend, endpoint.endpoint_name, config_name, saved_ok=mode == "resume")
        self._spawn(
            self._deploy,
            state,
            generation,
            backend,
            endpoint,
            spec,
            mode,
            retain,
            name=f"endpoint-{endpoint.endpoint_name}",
        )

    def undeploy(self, account: str, region: str, name: str) -> None:
        state = self._state(account, region, name)
        with state.changed:
            state.generation += 1
            deployment, state.active = state.active, None
            state.changed.notify_all()
        if deployment is not None:
            self._spawn(self._retire, deployment, name=f"endpoint-{name}-delete")

    def variant_urls(
        self, name: str, account: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        """Where each variant of an endpoint is served now (for tests and ``local status``)."""
        for (acc, reg, ep), state in list(self._endpoints.items()):
            if (
                ep == name
                and (account in (None, acc))
                and (region in (None, reg))
                and state.active is not None
            ):
                return {v.name: v.server.url for v in state.active.variants}
        return {}

    def _spec_path(self, backend: Any, endpoint_name: str) -> Path:
        folder: Path = self.work_dir / "endpoints" / str(backend.account_id) / str(backend.region_name)
        return folder / f"{endpoint_name}.json"

    def _deployment_spec(
        self, backend: Any, endpoint_name: str, config_name: str, saved_ok: bool
    ) -> dict[str, Any]:
        """The variants (model data, environment) and capture config of an endpoint config, read now."""
        saved = self._spec_path(backend, endpoint_name)
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            if saved_ok and saved.exists():
                data: dict[str, Any] = json.loads(saved.read_text())
                return data
            return {"config": config_name, "error": f"endpoint configuration {config_name} no longer exists"}
        variants = []
        for variant in config.production_variants:
            model = backend._models.get(variant["ModelName"])
            container: dict[str, Any] = {}
            if model is not None:
                container = model.primary_container or (model.containers[0] if model.containers else {})
            variants.append(
                {
                    "VariantName": variant["VariantName"],
                    "ModelName": variant["ModelName"],
                    "InitialVariantWeight": float(variant.get("InitialVariantWeight", 1.0)),
                    "ModelDataUrl": container.get("ModelDataUrl"),
                    "Environment": dict(container.get("Environment") or {}),
                    "Exists": model is not None,
                }
            )
        return {
            "config": config_name,
            "variants": variants,
            "production_variants": copy.deepcopy(config.production_variants),
            "capture": copy.deepcopy(config.data_capture_config or {}),
        }

    def _deploy(
        self,
        state: _EndpointState,
        generation: int,
        backend: Any,
        endpoint: Any,
        spec: dict[str, Any],
        mode: str,
        retain: bool,
    ) -> None:
        started: list[_Variant] = []
        try:
            if "error" in spec:
                raise RuntimeError(spec["error"])
            for variant in spec["variants"]:
                if not variant["Exists"]:
                    raise RuntimeError(f"model {variant['ModelName']} does not exist")
                if not variant["ModelDataUrl"]:
                    raise RuntimeError(f"model {variant['ModelName']} has no ModelDataUrl")
            errors: list[str] = []

            def launch(variant: dict[str, Any]) -> None:
                try:
                    model_dir = self._fetch_model(str(variant["ModelDataUrl"]))
                    env = self._job_env()
                    env.update({str(k): str(v) for k, v in variant["Environment"].items()})
                    env.setdefault("SAGEMAKER_PROGRAM", "inference.py")
                    env["SAGEMAKER_REGION"] = backend.region_name
                    log_path = self._variant_log(state.name, variant["VariantName"])
                    server = VariantServer(variant["VariantName"], model_dir, env, log_path)
                    with self._lock:
                        self._servers = [s for s in self._servers if s.proc is None or s.proc.poll() is None]
                        self._servers.append(server)
                    server.start(self.server_start_timeout_s)
                    started.append(_Variant(variant["VariantName"], variant["ModelName"], server))
                except Exception as exc:
                    errors.append(str(exc))

            threads = [threading.Thread(target=launch, args=(v,), daemon=True) for v in spec["variants"]]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise RuntimeError("; ".join(errors))
        except Exception as exc:
            for variant_ in started:
                variant_.server.stop()
            with state.changed:
                if state.generation != generation:
                    return
                reason = str(exc)[-FAILURE_REASON_MAX:]
                if mode == "update":  # the endpoint keeps serving its current config
                    endpoint.endpoint_status = "InService"
                    endpoint.failure_reason = f"Update failed, the endpoint kept its configuration: {reason}"[
                        -FAILURE_REASON_MAX:
                    ]
                    endpoint.pending_deployment_summary = None
                else:
                    endpoint.endpoint_status = "Failed"
                    endpoint.failure_reason = reason
                endpoint.last_modified_time = _utcnow()
                state.changed.notify_all()
            self._on_change()
            return
        order = {v["VariantName"]: i for i, v in enumerate(spec["variants"])}
        started.sort(key=lambda v: order[v.name])
        deployment = _Deployment(spec["config"], started, spec["capture"])
        with state.changed:
            if state.generation != generation or self._closed:
                deployment.stop()
                return
            old, state.active = state.active, deployment
            if mode != "resume":
                previous = {v["VariantName"]: v for v in endpoint.production_variants or []}
                variants = endpoint._process_production_variants(spec["production_variants"])
                if retain:
                    for v in variants:
                        if v["VariantName"] in previous and "CurrentWeight" in previous[v["VariantName"]]:
                            v["CurrentWeight"] = v["DesiredWeight"] = previous[v["VariantName"]][
                                "CurrentWeight"
                            ]
                endpoint.production_variants = variants
                endpoint.endpoint_config_name = spec["config"]
                endpoint.data_capture_config = spec["capture"]
            endpoint.endpoint_status = "InService"
            endpoint.failure_reason = None
            endpoint.pending_deployment_summary = None
            endpoint.last_modified_time = _utcnow()
            state.changed.notify_all()
        path = self._spec_path(backend, state.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec))
        self._on_change()
        if old is not None:
            self._retire(old)

    def _retire(self, deployment: _Deployment, drain_s: float = 30.0) -> None:
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with deployment.lock:
                if deployment.inflight == 0:
                    break
            time.sleep(0.05)
        deployment.stop()

    def _fetch_model(self, url: str) -> Path:
        """Download and extract model.tar.gz once per (URL, ETag)."""
        bucket, key = split_s3_uri(url)
        if not key.endswith((".tar.gz", ".tgz")):
            raise RuntimeError(f"ModelDataUrl {url} is not a model.tar.gz")
        s3 = self.clients.get("s3")
        try:
            etag = str(s3.head_object(Bucket=bucket, Key=key)["ETag"])
        except Exception as exc:
            raise RuntimeError(f"cannot read {url}: {exc}") from exc
        digest = hashlib.sha256(f"{url}\n{etag}".encode()).hexdigest()[:16]
        target = self.work_dir / "models" / digest
        with self._lock:
            lock = self._model_locks.setdefault(digest, threading.Lock())
        with lock:
            if (target / ".complete").exists():
                return target
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            archive = target.with_suffix(".tar.gz")
            s3.download_file(bucket, key, str(archive))
            try:
                _extract(archive, target)
            finally:
                archive.unlink(missing_ok=True)
            (target / ".complete").touch()
        return target

    def invoke(
        self,
        backend: Any,
        name: str,
        body: bytes,
        content_type: str,
        accept: str | None,
        target_variant: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
    ) -> InvokeResult:
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise _runtime_error(
                "ValidationError", f"Endpoint {name} of account {backend.account_id} not found."
            )
        state = self._state(backend.account_id, backend.region_name, name)
        with state.changed:
            if state.active is None and endpoint.endpoint_status in ("InService", "Updating"):
                state.changed.wait_for(lambda: state.active is not None, timeout=self.server_start_timeout_s)
            deployment = state.active
            if deployment is None:
                raise _runtime_error(
                    "ValidationError",
                    f"Endpoint {name} is not in service (status {endpoint.endpoint_status}).",
                )
            with deployment.lock:
                deployment.inflight += 1
        try:
            variant = self._pick_variant(endpoint, deployment, target_variant)
            headers = {"Content-Type": content_type}
            if accept:
                headers["Accept"] = accept
            if custom_attributes:
                headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
            try:
                status, out, out_type = variant.server.invoke(body, headers, self.invoke_timeout_s)
            except (OSError, urllib.error.URLError) as exc:
                raise _runtime_error(
                    "ModelError",
                    f"Received server error (500) from {variant.name}: {exc}",
                    OriginalStatusCode=500,
                    OriginalMessage=str(exc),
                ) from exc
            if status != 200:
                message = out.decode("utf-8", errors="replace")
                raise _runtime_error(
                    "ModelError",
                    f'Received server error ({status}) from {variant.name} with message "{message}". '
                    f"See {self._variant_log(name, variant.name)} for more information.",
                    OriginalStatusCode=status,
                    OriginalMessage=message,
                    LogStreamArn=f"arn:aws:logs:{backend.region_name}:{backend.account_id}:log-group:"
                    f"{ENDPOINT_LOG_GROUP_PREFIX}/{name}",
                )
            out_type = out_type or accept or "application/json"
            self._capture.record(
                deployment.capture, name, variant.name, (body, content_type), (out, out_type), inference_id
            )
            return InvokeResult(out, out_type, variant.name)
        finally:
            with deployment.lock:
                deployment.inflight -= 1

    def _variant_log(self, endpoint: str, variant: str) -> Path:
        return self.log_dir / "endpoints" / endpoint / f"{variant}.log"

    @staticmethod
    def _pick_variant(endpoint: Any, deployment: _Deployment, target: str | None) -> _Variant:
        if target:
            for variant in deployment.variants:
                if variant.name == target:
                    return variant
            raise _runtime_error(
                "ValidationError", f"Variant {target} not found for endpoint {endpoint.endpoint_name}."
            )
        weights_by_name = {
            v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in endpoint.production_variants or []
        }
        weights = [max(0.0, weights_by_name.get(v.name, 1.0)) for v in deployment.variants]
        if sum(weights) <= 0:
            weights = [1.0] * len(weights)
        return random.choices(deployment.variants, weights=weights)[0]


# ---- the moto patches ----------------------------------------------------------------------------------

_installed: dict[str, Any] = {}
_install_lock = threading.Lock()
_request = threading.local()  # the Environment of the CreateTrainingJob / CreateProcessingJob being served


def _manager() -> LocalSageMaker:
    manager: LocalSageMaker = _installed["manager"]
    return manager


def install(manager: LocalSageMaker) -> None:
    """Patch moto's SageMaker and sagemaker-runtime (idempotent; a later call replaces the manager).

    Also resumes what the restored state says was running (see ``LocalSageMaker.resume``).
    """
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    with _install_lock:
        fresh = _installed.get("manager") is not manager
        _installed["manager"] = manager
        if "originals" not in _installed:
            _installed["originals"] = _patch(
                SageMakerModelBackend, SageMakerResponse, SageMakerRuntimeResponse
            )
    if fresh:
        manager.resume()


def uninstall() -> None:
    """Restore moto's own behaviour (the local cloud calls this on stop)."""
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    classes = {
        "backend": SageMakerModelBackend,
        "response": SageMakerResponse,
        "runtime": SageMakerRuntimeResponse,
    }
    with _install_lock:
        originals: dict[tuple[str, str], Any] = _installed.pop("originals", {})
        _installed.clear()
        for (owner, attribute), value in originals.items():
            if value is _MISSING:
                delattr(classes[owner], attribute)
            else:
                setattr(classes[owner], attribute, value)


_MISSING = object()


def _patch(backend_cls: Any, response_cls: Any, runtime_cls: Any) -> dict[tuple[str, str], Any]:
    from moto.sagemaker.exceptions import ResourceInUseException
    from moto.sagemaker.models import FakeEndpoint, FakeProcessingJob, FakeTrainingJob

    classes = {"backend": backend_cls, "response": response_cls, "runtime": runtime_cls}
    originals: dict[tuple[str, str], Any] = {}

    def replace(owner: str, attribute: str, value: Any) -> None:
        originals[(owner, attribute)] = classes[owner].__dict__.get(attribute, _MISSING)
        setattr(classes[owner], attribute, value)

    original_create_training = backend_cls.create_training_job
    original_create_processing = backend_cls.create_processing_job
    original_create_endpoint = backend_cls.create_endpoint
    original_delete_endpoint = backend_cls.delete_endpoint

    def create_training_job(self: Any, **kwargs: Any) -> Any:
        name = kwargs["training_job_name"]
        environment = getattr(_request, "environment", None)
        if name in self.training_jobs:
            arn = FakeTrainingJob.arn_formatter(name, self.account_id, self.region_name)
            raise ResourceInUseException(message=f"Training job {arn} already exists: names must be unique")
        spec = copy.deepcopy(kwargs.get("algorithm_specification") or {})
        job = original_create_training(self, **kwargs)
        job.algorithm_specification = spec  # moto replaces MetricDefinitions with a sample of its own
        job.environment = environment or None  # moto drops Environment
        _manager().submit_training_job(self, job)
        return job

    def stop_training_job(self: Any, training_job_name: str) -> None:
        job = self.training_jobs.get(training_job_name)
        if job is None:
            arn = FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
            raise _validation_error(f"Could not find training job '{arn}'.")
        if job.training_job_status != "InProgress":
            raise _validation_error(
                f"The request was rejected because the training job is in status {job.training_job_status}."
            )
        _manager().stop_training_job(self, job)

    def create_processing_job(self: Any, **kwargs: Any) -> Any:
        name = kwargs["processing_job_name"]
        environment = getattr(_request, "environment", None)
        if name in self.processing_jobs:
            arn = FakeProcessingJob.arn_formatter(name, self.account_id, self.region_name)
            raise ResourceInUseException(message=f"Processing job {arn} already exists: names must be unique")
        job = original_create_processing(self, **kwargs)
        job.environment = environment or None  # moto drops Environment
        _manager().submit_processing_job(self, job)
        return job

    def stop_processing_job(self: Any, processing_job_name: str) -> None:
        job = self.processing_jobs.get(processing_job_name)
        if job is None:
            arn = FakeProcessingJob.arn_formatter(processing_job_name, self.account_id, self.region_name)
            raise _validation_error(f"Could not find processing job '{arn}'.")
        if job.processing_job_status != "InProgress":
            status = job.processing_job_status
            raise _validation_error(
                f"The request was rejected because the processing job is in status {status}."
            )
        _manager().stop_processing_job(self, job)

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        if endpoint_name in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise _validation_error(f'Cannot create already existing endpoint "{arn}".')
        endpoint = original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        _manager().deploy(self, endpoint, endpoint_config_name, mode="create")
        return endpoint

    def update_endpoint(
        self: Any, endpoint_name: str, endpoint_config_name: str, retain_all_variant_properties: bool = False
    ) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise _validation_error(f"Could not find endpoint '{arn}'.")
        if endpoint_config_name not in self.endpoint_configs:
            self.describe_endpoint_config(endpoint_config_name)  # raises moto's own error
        if endpoint.endpoint_status != "InService":
            raise _validation_error(
                f'Cannot update in-progress endpoint "{endpoint.arn}" (status {endpoint.endpoint_status}).'
            )
        _manager().deploy(
            self, endpoint, endpoint_config_name, mode="update", retain=retain_all_variant_properties
        )
        return str(endpoint.arn)

    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        original_delete_endpoint(self, endpoint_name)
        _manager().undeploy(self.account_id, self.region_name, endpoint_name)

    replace("backend", "create_training_job", create_training_job)
    replace("backend", "stop_training_job", stop_training_job)
    replace("backend", "create_processing_job", create_processing_job)
    replace("backend", "stop_processing_job", stop_processing_job)
    replace("backend", "create_endpoint", create_endpoint)
    replace("backend", "update_endpoint", update_endpoint)
    replace("backend", "delete_endpoint", delete_endpoint)

    from moto.core.responses import ActionResult, EmptyResult

    def stop_training_job_action(self: Any) -> Any:
        self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
        return EmptyResult()

    def update_endpoint_action(self: Any) -> Any:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
            retain_all_variant_properties=bool(self._get_param("RetainAllVariantProperties", False)),
        )
        return ActionResult({"EndpointArn": arn})

    def with_environment(original: Any) -> Any:
        def action(self: Any) -> Any:
            _request.environment = self._get_param("Environment")
            try:
                return original(self)
            finally:
                _request.environment = None

        return action

    replace("response", "create_training_job", with_environment(response_cls.create_training_job))
    replace("response", "create_processing_job", with_environment(response_cls.create_processing_job))
    replace("response", "stop_training_job", stop_training_job_action)
    replace("response", "update_endpoint", update_endpoint_action)

    def invoke_endpoint_action(self: Any) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        name = unquote(self.path.split("/")[2])
        backend = sagemaker_backends[self.current_account][self.region]
        headers = self.headers
        body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body or "").encode("utf-8")
        result = _manager().invoke(
            backend,
            name,
            body,
            content_type=headers.get("Content-Type") or "application/octet-stream",
            accept=headers.get("Accept"),
            target_variant=headers.get("X-Amzn-SageMaker-Target-Variant"),
            custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            inference_id=headers.get("X-Amzn-SageMaker-Inference-Id"),
        )
        return (
            200,
            {"Content-Type": result.content_type, "x-Amzn-Invoked-Production-Variant": result.variant},
            result.body,
        )

    replace("runtime", "invoke_endpoint", invoke_endpoint_action)
    replace("runtime", "use_raw_body", True)  # request bodies may be binary
    return originals
