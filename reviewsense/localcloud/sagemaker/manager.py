"""``LocalSageMaker``: the local cloud's SageMaker compute, composed of its jobs, endpoints and capture.

One object per local cloud owns the boto3 clients, the worker threads and the folders (work, logs) that
the parts share, resumes what the restored state says was running, and stops everything on shutdown.
The moto objects stay the source of truth for what the APIs return: the workers update their status
fields in place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewsense.localcloud.sagemaker.capture import CaptureWriter
from reviewsense.localcloud.sagemaker.common import Clients, Workspace, job_env
from reviewsense.localcloud.sagemaker.endpoints import Endpoints
from reviewsense.localcloud.sagemaker.jobs import Jobs
from reviewsense.localcloud.sagemaker.transforms import Transforms


class LocalSageMaker:
    """Owns the local cloud's running training/processing/transform jobs and endpoint variant servers."""

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
        self.clients = Clients(endpoint_url, region)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._capture = CaptureWriter(self.clients)
        ws = Workspace(
            self.clients, self.work_dir, self.log_dir, self._job_env, self._spawn, on_change or (lambda: None)
        )
        self.jobs = Jobs(ws, stop_grace_s=stop_grace_s)
        self.endpoints = Endpoints(
            ws, self._capture, server_start_timeout_s, invoke_timeout_s=invoke_timeout_s
        )
        self.transforms = Transforms(
            ws, self.endpoints.fetch_model, self.endpoints.container_env, server_start_timeout_s
        )

    def resume(self) -> None:
        """After a restart: running jobs become Failed; endpoints that were serving are served again."""
        from moto.sagemaker.models import sagemaker_backends

        for regions in list(dict.values(sagemaker_backends)):
            for backend in list(dict.values(regions)):
                self.jobs.fail_interrupted(backend)
                self.transforms.fail_interrupted(backend)
                self.endpoints.resume(backend)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop running jobs (they end Stopped) and every variant server; flush data capture."""
        self.endpoints.close()
        deadline = time.monotonic() + timeout_s
        self.jobs.stop_all("the local cloud was stopped", deadline)
        self.transforms.stop_all()
        for thread in list(self._threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.endpoints.shutdown()
        self._capture.close()

    def variant_urls(
        self, name: str, account: str | None = None, region: str | None = None
    ) -> dict[str, str]:
        """Where each variant of an endpoint is served now (for tests)."""
        return self.endpoints.variant_urls(name, account, region)

    def _job_env(self) -> dict[str, str]:
        return job_env(self.endpoint_url, self.region)

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread
