"""Keeps the local cloud's state on disk, so the lake, the models and the runs survive a restart.

moto keeps everything in memory. Its per-service backends pickle cleanly except SQS (it holds
locks), so we snapshot the services whose contents users care about: S3 (the lake, model
artifacts), Glue (the catalog), DynamoDB (idempotency, feedback), SageMaker (registry, endpoints),
Step Functions (state machines, executions and their history), SNS, EventBridge, IAM and CloudWatch
(``PERSISTED_SERVICES``). Queues are recreated empty on start.

Snapshots are written shortly after changes, so on their own they could lose the last seconds. S3
object writes are therefore also journaled before they are acknowledged (``journal.py``): ``load``
replays the journal over the snapshot, and ``save`` deletes the journal once a snapshot holding its
entries is on disk. Step Functions executions live in moto's ASL interpreter backend
(``stepfunctions-executions`` here) and hold live workers: ``executions.py`` saves them as data.
"""

from __future__ import annotations

import copyreg
import io
import logging
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

from reviewsense.localcloud.journal import S3Journal, fsync_directory

logger = logging.getLogger(__name__)

#: moto's ASL interpreter backend: where state machines and executions live once
#: ``execute_state_machine`` is on (``get_backend("stepfunctions")`` is the other, unused one).
STEPFUNCTIONS_EXECUTIONS = "stepfunctions-executions"

PERSISTED_SERVICES = (
    "s3",
    "glue",
    "dynamodb",
    "sagemaker",
    "stepfunctions",
    STEPFUNCTIONS_EXECUTIONS,
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


def _dumps(value: Any) -> bytes:
    """``pickle.dumps`` with this module's reductions.

    They stay out of ``copyreg``'s global table, so nothing else (``copy.deepcopy`` inside moto, for
    one) turns a live execution into a restored one.
    """
    from moto.s3.utils import _VersionedKeyStore
    from moto.stepfunctions.parser.backend.execution import Execution

    from reviewsense.localcloud.executions import RestoredExecution, reduce_execution

    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {
        **copyreg.dispatch_table,
        _VersionedKeyStore: _reduce_key_store,
        Execution: reduce_execution,
        RestoredExecution: reduce_execution,
    }
    pickler.dump(value)
    return buffer.getvalue()


def _backend(service: str) -> Any:
    if service == STEPFUNCTIONS_EXECUTIONS:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[call-overload]


def _reindex_buckets() -> None:
    """moto finds a bucket's account through ``bucket_accounts``, which lives outside the pickle."""
    from moto.s3.models import s3_backends

    for account_id, by_partition in list(s3_backends.items()):
        for partition, backend in list(by_partition.items()):
            for name in list(backend.buckets):
                s3_backends.bucket_accounts[name] = (partition, account_id)


def _write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that either the old or the new content survives a crash."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class StateStore:
    def __init__(
        self,
        directory: Path,
        services: tuple[str, ...] = PERSISTED_SERVICES,
        journal: S3Journal | None = None,
    ) -> None:
        self.directory = directory
        self.services = services
        self.journal = journal
        self.replayed = 0
        self._lock = threading.Lock()

    def save(self) -> list[str]:
        """Write one pickle per service (atomically, fsynced); return the services saved.

        The S3 journal is rotated first: every entry in the closed segments describes a write that
        had already happened, so a snapshot taken afterwards contains it and the segments can go.
        """
        saved: list[str] = []
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            closed = self.journal.rotate() if self.journal is not None else []
            for service in self.services:
                for attempt in range(3):
                    try:
                        data = _dumps(dict(_backend(service)))
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
                _write_durably(self.directory / f"{service}.pickle", data)
                saved.append(service)
            if self.journal is not None and "s3" in saved:
                fsync_directory(self.directory)
                self.journal.discard(closed)
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
            if service == "s3":
                _reindex_buckets()
            restored.append(service)
        if self.journal is not None:
            self.replayed = self.journal.replay()
            if self.replayed:
                logger.info("replayed %d journaled S3 writes", self.replayed)
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
