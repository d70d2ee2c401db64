"""Keeps the local cloud's state on disk, so the lake and the models survive a restart.

moto keeps everything in memory. Its per-service backends pickle cleanly except SQS (it holds
locks), so we snapshot the services whose contents users care about: S3 (the lake, model
artifacts), Glue (the catalog), DynamoDB (idempotency, feedback), SageMaker (registry, endpoints),
Step Functions (execution history), SNS and EventBridge. Queues are recreated empty on start.
"""

from __future__ import annotations

import copyreg
import logging
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PERSISTED_SERVICES = (
    "s3",
    "glue",
    "dynamodb",
    "sagemaker",
    "stepfunctions",
    "sns",
    "events",
    "iam",
    "cloudwatch",
)


def _rebuild_key_store(items: list[tuple[str, list[Any]]]) -> Any:
    from moto.s3.utils import _VersionedKeyStore

    store = _VersionedKeyStore()
    for key, versions in items:
        dict.__setitem__(store, key, versions)
    return store


def _reduce_key_store(store: Any) -> tuple[Any, tuple[list[tuple[str, list[Any]]]]]:
    # moto's S3 key store is a dict whose __setitem__ appends versions, so pickle's default
    # dict restore would nest the version lists; rebuild it through dict.__setitem__ instead.
    return _rebuild_key_store, ([(k, list(v)) for k, v in dict.items(store)],)


def _register_reducers() -> None:
    from moto.s3.utils import _VersionedKeyStore

    copyreg.pickle(_VersionedKeyStore, _reduce_key_store)


def _backend(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[call-overload]


class StateStore:
    def __init__(self, directory: Path, services: tuple[str, ...] = PERSISTED_SERVICES) -> None:
        self.directory = directory
        self.services = services
        self._lock = threading.Lock()

    def save(self) -> list[str]:
        """Write one pickle per service (atomically); return the services saved."""
        saved: list[str] = []
        _register_reducers()
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            for service in self.services:
                for attempt in range(3):
                    try:
                        data = pickle.dumps(dict(_backend(service)), protocol=pickle.HIGHEST_PROTOCOL)
                        break
                    except RuntimeError:  # a dict changed size under us: a request was in flight
                        time.sleep(0.05 * (attempt + 1))
                    except Exception as exc:
                        logger.warning("not persisting %s: %s", service, exc)
                        data = b""
                        break
                else:
                    continue
                if not data:
                    continue
                tmp = self.directory / f".{service}.pickle.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, self.directory / f"{service}.pickle")
                saved.append(service)
        return saved

    def load(self) -> list[str]:
        """Put saved backends back in place (before any request is served)."""
        restored: list[str] = []
        for service in self.services:
            path = self.directory / f"{service}.pickle"
            if not path.exists():
                continue
            try:
                accounts = pickle.loads(path.read_bytes())
            except Exception as exc:
                logger.warning("ignoring unreadable snapshot %s: %s", path, exc)
                continue
            live = _backend(service)
            live.clear()
            live.update(accounts)
            restored.append(service)
        return restored


class Snapshotter:
    """Saves the state shortly after it changes, in the background, at most every ``interval_s``."""

    def __init__(self, store: StateStore, interval_s: float = 2.0) -> None:
        self._store = store
        self._interval = interval_s
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="snapshotter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def mark_dirty(self) -> None:
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._store.save()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self._dirty.is_set():
                self._dirty.clear()
                self._store.save()
