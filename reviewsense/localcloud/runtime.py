"""Local stand-in for the Lambda service: runs the Chalice handlers in-process.

moto stores Lambda functions but never runs their code (that needs Docker). The local cloud
registers each Chalice handler under its deployed function name, and this runtime executes it
exactly as Lambda would: synchronous invocations return the result or a function error whose
``errorType`` is the exception's class name (what Step Functions ``Retry``/``Catch`` match);
asynchronous ones (EventBridge, ``InvocationType=Event``) run on a worker pool with Lambda's two
retries, then land in the function's dead-letter queue with the error attached.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the real Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 1024
    timeout_s: int = 900
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class FunctionSpec:
    name: str
    handler: Handler
    arn: str
    dead_letter_queue_url: str | None = None
    timeout_s: int = 900


@dataclass
class InvocationRecord:
    function: str
    request_id: str
    invocation_type: str
    attempt: int
    ok: bool
    duration_ms: float
    error_type: str | None = None
    error_message: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class FunctionError(Exception):
    """Raised for a synchronous invocation whose handler failed (payload is Lambda's error document)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", ""))
        self.payload = payload


class LocalLambdaRuntime:
    """Registry of in-process functions plus the machinery of sync/async invocation."""

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        max_workers: int = 4,
        retry_delays_s: tuple[float, ...] = (1.0, 2.0),
        send_to_dlq: Callable[[str, str], None] | None = None,
        after_invoke: Callable[[], None] | None = None,
        inline: bool = False,
    ) -> None:
        """``inline=True`` runs asynchronous invocations in the caller's thread (deterministic tests)."""
        self._functions: dict[str, FunctionSpec] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lambda")
        self._inline = inline
        self._locks: dict[str, threading.Lock] = {}
        self._retry_delays = retry_delays_s
        self._send_to_dlq = send_to_dlq
        self._after_invoke = after_invoke
        self._log_path = log_path
        self._log_lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._pending_lock = threading.Lock()
        self.history: list[InvocationRecord] = []

    # -- registry ----------------------------------------------------------------------------------

    def register(self, spec: FunctionSpec) -> None:
        self._functions[spec.name] = spec
        self._locks.setdefault(spec.name, threading.Lock())

    def knows(self, name_or_arn: str) -> bool:
        return self._resolve(name_or_arn) is not None

    def _resolve(self, name_or_arn: str) -> FunctionSpec | None:
        name = name_or_arn
        if ":function:" in name_or_arn:
            name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        return self._functions.get(name)

    @property
    def functions(self) -> dict[str, FunctionSpec]:
        return dict(self._functions)

    # -- invocation --------------------------------------------------------------------------------

    def invoke(self, name_or_arn: str, event: dict[str, Any]) -> Any:
        """Synchronous (RequestResponse) invocation; raises ``FunctionError`` when the handler fails."""
        spec = self._require(name_or_arn)
        ok, result = self._run(spec, event, "RequestResponse", attempt=1)
        if not ok:
            raise FunctionError(result)
        return result

    def invoke_async(self, name_or_arn: str, event: dict[str, Any]) -> Future[Any]:
        """Asynchronous (Event) invocation: retried twice, then sent to the dead-letter queue."""
        spec = self._require(name_or_arn)
        if self._inline:
            done: Future[Any] = Future()
            done.set_result(self._run_with_retries(spec, event))
            return done
        future = self._pool.submit(self._run_with_retries, spec, event)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def drain(self, timeout_s: float = 300.0) -> bool:
        """Wait until no asynchronous invocation is pending (tests and ``local status`` use it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._pending_lock:
                pending = list(self._pending)
            if not pending:
                return True
            for f in pending:
                with contextlib.suppress(Exception):  # failures are already in the history
                    f.result(timeout=max(0.0, deadline - time.monotonic()))
        return False

    @property
    def pending(self) -> int:
        with self._pending_lock:
            return len(self._pending)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- internals ---------------------------------------------------------------------------------

    def _forget(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def _require(self, name_or_arn: str) -> FunctionSpec:
        spec = self._resolve(name_or_arn)
        if spec is None:
            raise KeyError(f"no local function {name_or_arn!r}")
        return spec

    def _run_with_retries(self, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        attempts = 1 + len(self._retry_delays)
        result: Any = None
        for attempt in range(1, attempts + 1):
            ok, result = self._run(spec, event, "Event", attempt)
            if ok:
                return result
            if attempt < attempts:
                time.sleep(self._retry_delays[attempt - 1])
        if spec.dead_letter_queue_url and self._send_to_dlq is not None:
            body = {"function": spec.name, "event": event, "error": result, "attempts": attempts}
            self._send_to_dlq(spec.dead_letter_queue_url, json.dumps(body, default=str))
        return result

    def _run(self, spec: FunctionSpec, event: dict[str, Any], kind: str, attempt: int) -> tuple[bool, Any]:
        context = LambdaContext(
            function_name=spec.name, invoked_function_arn=spec.arn, timeout_s=spec.timeout_s
        )
        started = time.perf_counter()
        ok = True
        error: dict[str, Any] | None = None
        result: Any
        with self._locks[spec.name]:  # one invocation per function at a time, like one warm container
            try:
                result = spec.handler(event, context)
            except Exception as exc:
                ok = False
                error = {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc),
                }
                result = error
        record = InvocationRecord(
            function=spec.name,
            request_id=context.aws_request_id,
            invocation_type=kind,
            attempt=attempt,
            ok=ok,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            error_type=error["errorType"] if error else None,
            error_message=error["errorMessage"] if error else None,
        )
        self._log(record)
        if self._after_invoke is not None:
            self._after_invoke()
        return ok, result

    def _log(self, record: InvocationRecord) -> None:
        with self._log_lock:
            self.history.append(record)
            if self._log_path is not None:
                self._log_path.parent.mkdir(parents=True, exist_ok=True)
                with self._log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record.__dict__) + "\n")
