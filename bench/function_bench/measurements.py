"""The measurements, each on running processes: serving (latency, throughput, memory), cold starts, the
machine's speed right now, and training time per allow-listed estimator."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import http_load, servers
from .config import REPO


def serving(port: int, pid: int, quick: bool) -> dict[str, Any]:
    scale = 0.3 if quick else 1.0
    result = {
        "warm_1_row": http_load.latencies(port, 1, int(5000 * scale), seconds=8 * scale),
        "warm_100_rows": http_load.latencies(port, 100, int(1500 * scale), seconds=5 * scale),
        "throughput_1_row": http_load.throughput(port, pid, 1, connections=8, seconds=3 * scale),
        "throughput_100_rows": http_load.throughput(port, pid, 100, connections=8, seconds=3 * scale),
    }
    result.update(servers.memory_mb(pid))
    return result


def cold_starts(start, runs: int) -> dict[str, Any]:
    """Wall time from process start to the first correct answer, and the CPU the process spent to get there
    (less sensitive than wall time to other work on a shared machine)."""
    times, cpu = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process, port = start()
        try:
            http_load.first_correct_prediction(port, process, time.monotonic() + 60)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append(servers.cpu_ms(process.pid))
        finally:
            servers.stop(process)
    return {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "median_cpu_ms": statistics.median(cpu),
        "runs": runs,
    }


def calibration(python: Path, runs: int = 7) -> dict[str, float]:
    """How fast this machine is right now: interpreter start, and importing numpy, in the predict venv."""
    result = {}
    for name, code in (("python_start_ms", "pass"), ("import_numpy_ms", "import numpy")):
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([str(python), "-c", code], check=True)
            samples.append((time.perf_counter() - started) * 1000)
        result[name] = round(statistics.median(samples), 1)
    return result


def training_times(store_url: str, token: str, log_dir: Path) -> dict[str, Any]:
    """Every allow-listed estimator through one running train function per task: classifiers on iris,
    regressors on diabetes (each request is a full run: fit, ONNX export, agreement check, upload)."""
    sys.path.insert(0, str(REPO / "functions" / "train"))
    import estimators  # the allow-list, from the train function itself
    from iris_client import ModelStoreClient

    times = {}
    for model, dataset, names in (
        ("bench-classifiers", "iris", estimators.CLASSIFIERS),
        ("bench-regressors", "diabetes", estimators.REGRESSORS),
    ):
        env = {"MODEL_NAME": model, "MODEL_STORE_URL": store_url, "MODEL_STORE_TOKEN": token}
        process, port = servers.start_function("train", env, log_dir / "train.log")
        try:
            servers.wait_healthy(port, process, log_dir / "train.log")
            for name in sorted(names):
                params = {"max_iter": 2000} if name.startswith("MLP") else {}
                started = time.perf_counter()
                answer = http_load.post_json(port, {"estimator": name, "dataset": dataset, "params": params})
                wall = time.perf_counter() - started
                with ModelStoreClient(store_url, token) as client:
                    stored = client.get_version(model, answer["model"]["version"])
                times[name] = {
                    "dataset": dataset,
                    "request_seconds": round(wall, 3),
                    "fit_seconds": stored.metadata["fitSeconds"],
                    "metrics": {k: round(v, 4) for k, v in answer["metrics"].items()},
                }
        finally:
            servers.stop(process)
    return times
