"""Running one job's process the way SageMaker runs a container's entry point.

Both outputs stream to the job's log file, CloudWatch Logs and a per-line callback (metrics); a stop
request or ``MaxRuntimeInSeconds`` sends SIGTERM to the whole process group and SIGKILL after a grace
period, as SageMaker does. Training and processing jobs share this loop.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker.common import STDERR_TAIL_LINES
from reviewsense.localcloud.sagemaker.telemetry import Telemetry


@dataclass
class Run:
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
class Outcome:
    returncode: int | None
    stopped: str  # "" = ran to its end; else why it was stopped
    stderr_tail: list[str]


def signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the job runs in its own session: its children go too


def run_process(
    run: Run,
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    telemetry: Telemetry,
    on_line: Callable[[str], None],
    max_runtime_s: float | None,
    stop_grace_s: float,
) -> Outcome:
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
                    signal_group(proc, signal.SIGTERM)  # SageMaker: SIGTERM, then SIGKILL after a grace
                    kill_at = now + stop_grace_s
            if kill_at is not None and now > kill_at and proc.poll() is None:
                signal_group(proc, signal.SIGKILL)
                kill_at = None
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 5.0:  # a leftover child holds the pipes open
                signal_group(proc, signal.SIGKILL)
                break
            if now - last_flush > 1.0:
                log_file.flush()
                telemetry.flush()
                last_flush = now
    returncode = proc.wait()
    signal_group(proc, signal.SIGKILL)  # leftovers of a job that exited but left children behind
    telemetry.flush()
    return Outcome(returncode=returncode, stopped=stopped, stderr_tail=list(tail or any_tail))
