"""What the study measures beside latency (bench_stack.py, part 3): the memory a set of processes holds and
reserves over time, whether a process is a pool's pre-warmed one, and Locust runs read back from their CSVs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from local_openfaas.runtime.load import rss_bytes

ROOT = Path(__file__).resolve().parents[1]


class MemorySampler:
    """Samples the resident memory of a set of processes (re-listed each time) and integrates it over time.

    memory_mib_s: the integral of RSS. reserved_mib_s: each process's peak RSS times its lifetime — what a
    scheduler must reserve for it (a container's memory request sized to its peak)."""

    def __init__(self, pids, interval: float = 0.2):
        self._pids, self._interval = pids, interval
        self.memory_mib_s = 0.0
        self._peaks: dict[int, float] = {}
        self._lifetimes: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            step, last = now - last, now
            for pid in self._pids():
                rss = rss_bytes(pid)
                if rss is None:
                    continue
                mib = rss / 2**20
                self.memory_mib_s += mib * step
                self._peaks[pid] = max(self._peaks.get(pid, 0.0), mib)
                self._lifetimes[pid] = self._lifetimes.get(pid, 0.0) + step

    @property
    def reserved_mib_s(self) -> float:
        return sum(self._peaks[pid] * self._lifetimes[pid] for pid in self._peaks)

    @property
    def processes(self) -> int:
        return len(self._peaks)


def is_zygote(pid: int) -> bool:
    """A pre-warmed process still waiting in the pool (a replica's command line says zygote.py too, but its
    stdin is no longer a pipe: it became the function)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"zygote.py" in cmdline and os.readlink(f"/proc/{pid}/fd/0").startswith("pipe:")
    except OSError:
        return False


def locust(host: str, predict_path: str, train_path: str, stages: list, csv_prefix: Path, log: Path) -> dict:
    env = {**os.environ, "BENCH_PREDICT_PATH": predict_path, "BENCH_TRAIN_PATH": train_path,
           "BENCH_STAGES": json.dumps(stages), "BENCH_PER_USER_RPS": "2", "BENCH_TRAIN_EVERY": "100"}
    command = [str(Path(sys.executable).with_name("locust")), "-f", str(ROOT / "bench" / "locust" / "locustfile.py"),
               "--headless", "--host", host, "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING",
               "--stop-timeout", "30"]
    with open(log, "ab") as output:
        subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT, check=False, timeout=600)
    rows = list(_csv_rows(Path(f"{csv_prefix}_stats.csv")))
    result = {}
    for row in rows:
        key = {"predict": "predict", "train": "train", "Aggregated": "all"}.get(row["Name"])
        if key:
            result[key] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                           "p50_ms": float(row["50%"]), "p99_ms": float(row["99%"]),
                           "rps": round(float(row["Requests/s"]), 2)}
    return result


def _csv_rows(path: Path):
    with open(path, newline="") as handle:
        yield from csv.DictReader(handle)
