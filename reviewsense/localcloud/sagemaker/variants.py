"""The model servers behind an endpoint: one ``endpoint_server.py`` process per production variant.

A variant server loads the model's ``code/inference.py`` handler and speaks the SageMaker serving
protocol (``/ping``, ``/invocations``) on a free port of 127.0.0.1. A deployment is the set of variant
servers of one endpoint config; it counts requests in flight so that an update can drain it before
stopping it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker.common import STDERR_TAIL_LINES, text_tail

ENDPOINT_SERVER = Path(__file__).parent.parent / "endpoint_server.py"


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
                        + text_tail(self._log_tail(), 800)
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
class Variant:
    name: str
    model_name: str
    server: VariantServer


@dataclass
class Deployment:
    config_name: str
    variants: list[Variant]
    capture: dict[str, Any]
    inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        for variant in self.variants:
            variant.server.stop()
