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
from typing import Any, TextIO

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
    lines = _read_outputs(proc)
    deadline = time.monotonic() + max_runtime_s if max_runtime_s else None
    supervisor = _Supervisor(run, proc, deadline, stop_grace_s)
    with log_path.open("a", encoding="utf-8") as log_file:
        output = _Output(log_file, telemetry, on_line)
        open_streams = 2
        last_flush = time.monotonic()
        while open_streams:
            try:
                stream, text = lines.get(timeout=0.2)
            except queue.Empty:
                pass
            else:
                if text is None:
                    open_streams -= 1
                else:
                    output.line(stream, text)
            now = time.monotonic()
            if supervisor.check(now):
                break  # a leftover child holds the pipes open
            if now - last_flush > 1.0:
                output.flush()
                last_flush = now
    returncode = proc.wait()
    signal_group(proc, signal.SIGKILL)  # leftovers of a job that exited but left children behind
    telemetry.flush()
    return Outcome(returncode=returncode, stopped=supervisor.stopped, stderr_tail=output.stderr_tail())


def _read_outputs(proc: subprocess.Popen[str]) -> queue.Queue[tuple[str, str | None]]:
    """Both outputs' lines, as ("stdout" or "stderr", line); (stream, None) once that stream ends."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()

    def pump(stream: Any, name: str) -> None:
        for raw in stream:
            lines.put((name, raw.rstrip("\n")))
        lines.put((name, None))

    assert proc.stdout is not None and proc.stderr is not None
    for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
        threading.Thread(target=pump, args=(stream, name), daemon=True).start()
    return lines


@dataclass
class _Output:
    """Where each output line goes: the log file, CloudWatch Logs, the callback and the error tail."""

    log_file: TextIO
    telemetry: Telemetry
    on_line: Callable[[str], None]
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))
    #: The last lines of either stream, for a script that reports its error on stdout.
    any_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))

    def line(self, stream: str, text: str) -> None:
        self.log_file.write(text + "\n")
        self.telemetry.line(text)
        self.any_tail.append(text)
        if stream == "stderr":
            self.tail.append(text)
        self.on_line(text)

    def flush(self) -> None:
        self.log_file.flush()
        self.telemetry.flush()

    def stderr_tail(self) -> list[str]:
        return list(self.tail or self.any_tail)


@dataclass
class _Supervisor:
    """Stop request or runtime limit: SIGTERM, then SIGKILL after the grace period, as SageMaker does."""

    run: Run
    proc: subprocess.Popen[str]
    deadline: float | None
    stop_grace_s: float
    stopped: str = ""  # "" while running; else why it was stopped
    kill_at: float | None = None
    exited_at: float | None = None

    def check(self, now: float) -> bool:
        """Act on the clock at ``now``; True when reading must end (the process exited 5 s ago)."""
        if not self.stopped:
            self._check_stop(now)
        if self.kill_at is not None and now > self.kill_at and self.proc.poll() is None:
            signal_group(self.proc, signal.SIGKILL)
            self.kill_at = None
        if self.exited_at is None and self.proc.poll() is not None:
            self.exited_at = now
        if self.exited_at is not None and now - self.exited_at > 5.0:
            signal_group(self.proc, signal.SIGKILL)
            return True
        return False

    def _check_stop(self, now: float) -> None:
        if self.run.stop_requested.is_set():
            self.stopped = self.run.stop_reason or "StopRequested"
        elif self.deadline is not None and now > self.deadline:
            self.stopped = "MaxRuntimeExceeded"
        if self.stopped:
            signal_group(self.proc, signal.SIGTERM)
            self.kill_at = now + self.stop_grace_s
