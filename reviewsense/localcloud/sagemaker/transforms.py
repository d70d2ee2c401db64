"""Batch Transform jobs: created through moto, run for real by the model's own serving handler.

moto 5.2.5 stores a transform job as "Completed" at once and runs nothing (and has no
``StopTransformJob``). Here ``CreateTransformJob`` returns at once (the patches hand the job over) and a
worker does what SageMaker does on its instance: starts the model's server (the same
``endpoint_server.py`` process as an endpoint variant, in the image's emulated container, loading
``code/inference.py``), reads every object under the input prefix, splits it into records
(``SplitType=Line``), sends them in mini-batches of at most ``MaxPayloadInMB`` (``MultiRecord``) or one
by one (``SingleRecord``) with the job's ``ContentType`` and ``Accept``, joins each answer with its
input record when ``DataProcessing.JoinSource`` is ``Input`` (adding ``SageMakerOutput``, or
``SageMakerInput``/``SageMakerOutput`` for a record that is not an object) and keeps what
``OutputFilter`` selects, and writes ``<input key relative to the prefix>.out`` under ``S3OutputPath``
as each input object finishes. The moto job's status fields follow, so Describe and the saved state
see the real progress; a stop request ends it ``Stopped``.

Supported here: ``S3Prefix`` inputs, ``CompressionType`` None or Gzip, ``SplitType`` Line or None,
JSON Lines input for joins and filters, filters ``$``, ``$.key`` and ``$['a','b']``. Anything else ends
the job ``Failed`` with a ``ClientError`` that says so, rather than running something else.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker.common import (
    FAILURE_REASON_MAX,
    JobError,
    Workspace,
    split_s3_uri,
    utcnow,
)
from reviewsense.localcloud.sagemaker.variants import VariantServer

log = logging.getLogger(__name__)

MB = 1024 * 1024
_KEYS = re.compile(r"^\$\[(\s*'[^']+'\s*(,\s*'[^']+'\s*)*)\]$")
_KEY = re.compile(r"^\$\.([A-Za-z_][A-Za-z0-9_]*)$")


class _StoppedError(Exception):
    """The job was asked to stop."""


def json_filter(expression: str | None) -> Callable[[Any], Any]:
    """The subset of SageMaker's JSONPath filters the local cloud applies (see the module docstring)."""
    expr = (expression or "$").strip()
    if expr == "$":
        return lambda value: value
    single = _KEY.match(expr)
    if single:
        key = single.group(1)
        return lambda value: value[key]
    several = _KEYS.match(expr)
    if several:
        keys = [k.strip().strip("'") for k in several.group(1).split(",")]
        return lambda value: {k: value[k] for k in keys if k in value}
    raise JobError(f"ClientError: the local cloud does not support the JSONPath filter {expr!r}")


def join_records(record: Any, answer: Any) -> Any:
    """SageMaker's ``JoinSource=Input`` for JSON: the answer under ``SageMakerOutput``."""
    if isinstance(record, dict):
        return {**record, "SageMakerOutput": answer}
    return {"SageMakerInput": record, "SageMakerOutput": answer}


def mini_batches(records: list[bytes], strategy: str, max_payload_bytes: int) -> list[list[bytes]]:
    """Records grouped as SageMaker sends them: up to the payload limit (MultiRecord) or one each."""
    if strategy != "MultiRecord":
        return [[r] for r in records]
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if len(record) > max_payload_bytes:
            raise JobError(
                f"ClientError: a record of {len(record)} bytes exceeds MaxPayloadInMB "
                f"({max_payload_bytes // MB} MB)"
            )
        if current and size + len(record) + 1 > max_payload_bytes:
            batches.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record) + 1
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class _Plan:
    """What a transform job's request says about reading, sending and writing its records."""

    input_uri: str
    output_uri: str
    gzip: bool
    split: str
    strategy: str
    payload_bytes: int
    content_type: str
    accept: str
    retries: int
    timeout_s: float
    assemble: bytes
    joined: bool
    uses_json: bool
    input_filter: Callable[[Any], Any]
    output_filter: Callable[[Any], Any]

    @classmethod
    def of(cls, job: Any) -> _Plan:
        spec = job.transform_input or {}
        source = (spec.get("DataSource") or {}).get("S3DataSource") or {}
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            kind = source.get("S3DataType")
            raise JobError(f"ClientError: the local cloud runs S3Prefix inputs only, not {kind}")
        split = str(spec.get("SplitType") or "None")
        if split not in ("Line", "None"):
            raise JobError(f"ClientError: the local cloud splits Line or None, not {split}")
        output = job.transform_output or {}
        processing = job.data_processing or {}
        joined = (processing.get("JoinSource") or "None") == "Input"
        filters = (processing.get("InputFilter") or "$", processing.get("OutputFilter") or "$")
        content_type = str(spec.get("ContentType") or "application/octet-stream")
        client = job.model_client_config or {}
        payload_mb = 6 if job.max_payload_in_mb is None else int(job.max_payload_in_mb)
        return cls(
            input_uri=str(source["S3Uri"]),
            output_uri=str(output["S3OutputPath"]),
            gzip=spec.get("CompressionType") == "Gzip",
            split=split,
            strategy=str(job.batch_strategy or "MultiRecord"),
            # 0: no limit (SageMaker then streams each object in one chunked request)
            payload_bytes=payload_mb * MB if payload_mb else sys.maxsize,
            content_type=content_type,
            accept=str(output.get("Accept") or content_type),
            retries=int(client.get("InvocationsMaxRetries") or 0),
            timeout_s=float(client.get("InvocationsTimeoutInSeconds") or 600),
            assemble=b"\n" if output.get("AssembleWith") == "Line" else b"",
            joined=joined,
            uses_json=joined or filters != ("$", "$"),
            input_filter=json_filter(filters[0]),
            output_filter=json_filter(filters[1]),
        )


class Transforms:
    """The running transform jobs of one local cloud."""

    def __init__(
        self,
        ws: Workspace,
        fetch_model: Callable[[str], Path],
        container_env: Callable[[str, dict[str, Any], Path, dict[str, str]], dict[str, str]],
        server_start_timeout_s: float,
    ) -> None:
        self.ws = ws
        self.fetch_model = fetch_model
        self.container_env = container_env
        self.server_start_timeout_s = server_start_timeout_s
        self._stops: dict[tuple[str, str, str], threading.Event] = {}
        self._threads: dict[tuple[str, str, str], threading.Thread] = {}
        self._lock = threading.Lock()

    def fail_interrupted(self, backend: Any) -> None:
        reason = "the local cloud stopped while this job was running; start it again"
        for job in list(backend.transform_jobs.values()):
            if job.transform_job_status in ("InProgress", "Stopping"):
                self._finish(job, "Failed", reason)

    def stop_all(self) -> None:
        with self._lock:
            events = list(self._stops.values())
        for event in events:
            event.set()

    def submit(self, backend: Any, job: Any) -> None:
        now = utcnow()
        job.transform_job_status = "InProgress"
        job.failure_reason = None
        job.transform_start_time = now
        job.transform_end_time = None
        job.last_modified_time = now
        key = (backend.account_id, backend.region_name, job.transform_job_name)
        stop = threading.Event()
        with self._lock:
            self._stops[key] = stop
            self._threads[key] = self.ws.spawn(
                self._run, backend, job, stop, name=f"transform-{job.transform_job_name}"
            )
        self.ws.on_change()

    def stop(self, backend: Any, job: Any) -> None:
        key = (backend.account_id, backend.region_name, job.transform_job_name)
        job.transform_job_status = "Stopping"
        job.last_modified_time = utcnow()
        with self._lock:
            event, thread = self._stops.get(key), self._threads.get(key)
        if event is None or thread is None or not thread.is_alive():
            self._finish(job, "Stopped")
            return
        event.set()

    def _finish(self, job: Any, status: str, failure_reason: str | None = None) -> None:
        now = utcnow()
        job.transform_end_time = now
        job.last_modified_time = now
        job.failure_reason = failure_reason[-FAILURE_REASON_MAX:] if failure_reason else None
        job.transform_job_status = status
        self.ws.on_change()

    def _run(self, backend: Any, job: Any, stop: threading.Event) -> None:
        name = job.transform_job_name
        work = self.ws.work_dir / "transform" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        server: VariantServer | None = None
        try:
            server = self._start_server(backend, job, work)
            self._transform(job, server, stop)
        except _StoppedError:
            self._finish(job, "Stopped")
            return
        except JobError as exc:
            self._finish(job, "Failed", str(exc))
            return
        except Exception as exc:
            log.exception("transform job %s", name)
            self._finish(job, "Failed", f"InternalServerError: {type(exc).__name__}: {exc}")
            return
        finally:
            if server is not None:
                server.stop()
        self._finish(job, "Completed")

    def _start_server(self, backend: Any, job: Any, work: Path) -> VariantServer:
        model = backend._models.get(job.model_name)
        if model is None:
            raise JobError(f'ClientError: Could not find model "{job.model_name}".')
        container = model.primary_container or (model.containers[0] if model.containers else {})
        url = container.get("ModelDataUrl")
        if not url:
            raise JobError(f"ClientError: model {job.model_name} has no ModelDataUrl")
        try:
            model_dir = self.fetch_model(str(url))
        except RuntimeError as exc:
            raise JobError(f"ClientError: {exc}") from exc
        env = self.ws.job_env()
        env.update({str(k): str(v) for k, v in (container.get("Environment") or {}).items()})
        env.update({str(k): str(v) for k, v in (job.environment or {}).items()})
        env.setdefault("SAGEMAKER_PROGRAM", "inference.py")
        env["SAGEMAKER_REGION"] = backend.region_name
        variant = {"VariantName": "transform", "Image": container.get("Image")}
        try:
            env = self.container_env(f"transform-{job.transform_job_name}", variant, model_dir, env)
        except RuntimeError as exc:
            raise JobError(f"ClientError: {exc}") from exc
        log_path = self.ws.log_dir / "transform" / f"{job.transform_job_name}.log"
        server = VariantServer("transform", model_dir, env, log_path)
        try:
            server.start(self.server_start_timeout_s)
        except RuntimeError as exc:
            raise JobError(f"ClientError: the model server did not start: {exc}") from exc
        return server

    def _transform(self, job: Any, server: VariantServer, stop: threading.Event) -> None:
        plan = _Plan.of(job)
        s3 = self.ws.clients.get("s3")
        bucket, prefix = split_s3_uri(plan.input_uri)
        base = prefix if prefix.endswith("/") or not prefix else prefix.rsplit("/", 1)[0] + "/"
        out_bucket, out_prefix = split_s3_uri(plan.output_uri)
        out_prefix = out_prefix.rstrip("/")
        keys = [
            str(o["Key"])
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
            if not str(o["Key"]).endswith("/")
        ]
        if not keys:
            raise JobError(f"ClientError: no objects found under {plan.input_uri}")
        for key in sorted(keys):
            if stop.is_set():
                raise _StoppedError
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            body = self._transform_object(plan, server, stop, key, data)
            relative = key[len(base) :] if key.startswith(base) else key.rsplit("/", 1)[-1]
            target = f"{out_prefix}/{relative}.out" if out_prefix else f"{relative}.out"
            s3.put_object(Bucket=out_bucket, Key=target, Body=body)
            job.last_modified_time = utcnow()

    def _transform_object(
        self, plan: _Plan, server: VariantServer, stop: threading.Event, key: str, data: bytes
    ) -> bytes:
        """One input object's ``.out`` body: its records sent in mini-batches, answers joined/filtered."""
        if plan.gzip:
            data = gzip.decompress(data)
        records = [line for line in data.split(b"\n") if line.strip()] if plan.split == "Line" else [data]
        results: list[bytes] = []
        for batch in mini_batches(records, plan.strategy, plan.payload_bytes):
            if stop.is_set():
                raise _StoppedError
            if not plan.uses_json:
                results.append(self._invoke(server, plan, b"\n".join(batch), key).rstrip(b"\n"))
                continue
            parsed = [json.loads(r) for r in batch]
            body = b"\n".join(json.dumps(plan.input_filter(p)).encode() for p in parsed)
            answer = self._invoke(server, plan, body, key)
            answers = [json.loads(line) for line in answer.decode("utf-8").splitlines() if line.strip()]
            if plan.strategy == "SingleRecord" and len(answers) != 1:
                answers = [json.loads(answer)]
            if len(answers) != len(batch):
                raise JobError(
                    f"ClientError: {key}: the model answered {len(answers)} records for {len(batch)} "
                    "inputs, so they cannot be joined (answer one line per input record)"
                )
            for record, out in zip(parsed, answers, strict=True):
                value = join_records(record, out) if plan.joined else out
                results.append(json.dumps(plan.output_filter(value), ensure_ascii=False).encode("utf-8"))
        return plan.assemble.join(results) + (b"\n" if plan.assemble and results else b"")

    @staticmethod
    def _invoke(server: VariantServer, plan: _Plan, body: bytes, key: str) -> bytes:
        last = ""
        headers = {"Content-Type": plan.content_type, "Accept": plan.accept}
        for _ in range(plan.retries + 1):
            try:
                status, out, _type = server.invoke(body, headers, plan.timeout_s)
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if status == 200:
                return out
            last = f"{status}: {out.decode('utf-8', 'replace')[:400]}"
            if status < 500:
                break
        raise JobError(
            f"ClientError: {key}: the model container answered {last}. See the job's log for more."
        )
