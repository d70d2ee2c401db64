"""What the write-through S3 journal costs: PutObject latency on the local cloud with and without it.

Starts the local cloud twice as a separate process (as users run it): once persisting (every S3 object
write is journaled and fsynced before the response) and once with ``--no-persist`` (memory only, no
journal). Periodic snapshots are pushed out of the way in both, so the difference is the journal.
Keys are outside ``raw/``, so no ingest runs. Prints a Markdown table of median and p95 latencies.

Run with ``make bench-put-latency``. The numbers depend on the disk's fsync latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from reviewsense.target import free_port, is_alive, local_client, project_root

SIZES = (1024, 100 * 1024, 1024 * 1024, 8 * 1024 * 1024)


def _start(home: Path, port: int, persist: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "reviewsense.cli", "local", "up", "--port", str(port)]
    if not persist:
        command.append("--no-persist")
    env = {**os.environ, "REVIEWSENSE_HOME": str(home), "REVIEWSENSE_LOCAL_SNAPSHOT_INTERVAL_S": "3600"}
    log = (home / "bench.log").open("ab")
    proc = subprocess.Popen(command, cwd=project_root(), env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if (home / "endpoint.json").exists() and is_alive(endpoint):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"the local cloud did not start; see {home / 'bench.log'}")


def measure(endpoint: str, size: int, repeats: int) -> list[float]:
    s3 = local_client(endpoint, "s3")
    body = os.urandom(size)
    s3.put_object(Bucket="reviewsense-lake", Key="bench/warmup", Body=body)
    seconds = []
    for i in range(repeats):
        started = time.perf_counter()
        s3.put_object(Bucket="reviewsense-lake", Key=f"bench/{size}/{i}", Body=body)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: Sequence[str] | None = None) -> dict[str, dict[int, list[float]]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    results: dict[str, dict[int, list[float]]] = {}
    for mode, persist in (("journal (persist)", True), ("memory only (--no-persist)", False)):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            port = free_port()
            proc = _start(home, port, persist)
            try:
                endpoint = f"http://127.0.0.1:{port}"
                results[mode] = {size: measure(endpoint, size, args.repeats) for size in SIZES}
            finally:
                proc.terminate()
                proc.wait(timeout=120)
    print(f"PutObject latency, {args.repeats} puts per size, {os.cpu_count()} CPUs (ms: median / p95)\n")
    print("| object size | " + " | ".join(results) + " | journal cost (median) |")
    print("|---|" + "---:|" * (len(results) + 1))
    for size in SIZES:
        cells = []
        medians = []
        for runs in results.values():
            ms = sorted(s * 1000 for s in runs[size])
            medians.append(statistics.median(ms))
            cells.append(f"{medians[-1]:.1f} / {ms[int(0.95 * (len(ms) - 1))]:.1f}")
        print(f"| {size // 1024} KiB | " + " | ".join(cells) + f" | {medians[0] - medians[1]:+.1f} ms |")
    return results


if __name__ == "__main__":
    main()
