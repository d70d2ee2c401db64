"""Control of the local cloud from another process: start it in the background, stop it.

``reviewsense local down`` and ``make demo`` drive a local cloud they did not start in-process; the
cloud itself (``reviewsense.localcloud.server``) runs in its own process and advertises itself in
``<home>/endpoint.json``, which is all this module relies on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from reviewsense import target as targets
from reviewsense.errors import LocalCloudNotRunningError, LocalCloudNotStoppedError


def start_in_background(port: int, timeout_s: float = 120.0) -> dict[str, Any]:
    """Start ``reviewsense local up`` as a detached process and wait until it answers."""
    home = targets.local_home()
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "localcloud.log").open("ab")
    subprocess.Popen(
        [sys.executable, "-m", "reviewsense.cli", "local", "up", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=targets.project_root(),
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = targets.running_local_cloud(home)
        if info:
            return info
        time.sleep(0.5)
    raise LocalCloudNotRunningError(f"the local cloud did not start; see {home / 'localcloud.log'}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(timeout_s: float = 120.0) -> bool:
    """Stop the running local cloud (it saves its state); False when none was running.

    Judged by the process, not by the endpoint: a busy server may be slow to answer.
    """
    info = targets.read_endpoint_file()
    pid = int(info["pid"]) if info else 0
    if not pid or not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(pid):
        if targets.read_endpoint_file() is None:  # removed by the server as its last step
            break
        time.sleep(0.2)
    if targets.read_endpoint_file() is not None and pid_alive(pid):
        raise LocalCloudNotStoppedError(f"the local cloud (pid {pid}) did not stop within {timeout_s:.0f} s")
    return True
