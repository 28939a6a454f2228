"""One whole run: a store, a trained forest, the predict function and the scikit-learn baseline measured the
same way; the result document with its targets, and its one-line summary."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import http_load, measurements, servers
from .config import ADMIN_TOKEN, MODEL, SPEC, TARGETS


def run(quick: bool) -> dict[str, Any]:
    from iris_client import ModelStoreClient
    from mlfunctions_harness.model_store import start_iris_server, stop_iris_server

    from local_openfaas import funcenv

    predict_python = funcenv.function_python(funcenv.FUNCTIONS_DIR / "predict")
    funcenv.function_python(funcenv.FUNCTIONS_DIR / "train")
    load_before = os.getloadavg()
    calibration = measurements.calibration(predict_python)
    with tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp_dir:
        tmp = Path(tmp_dir)
        store_url, store = start_iris_server(tmp / "store", ADMIN_TOKEN)
        processes: list[subprocess.Popen] = []
        try:
            with ModelStoreClient(store_url, ADMIN_TOKEN) as admin:
                token = admin.create_token(models=["*"], rights=["read", "write"]).token
            env = {"MODEL_NAME": MODEL, "MODEL_STORE_URL": store_url, "MODEL_STORE_TOKEN": token}

            train, train_port = servers.start_function("train", env, tmp / "train.log")
            processes.append(train)
            servers.wait_healthy(train_port, train, tmp / "train.log")
            trained = http_load.post_json(train_port, SPEC)
            servers.stop(train)

            # The same model for the baseline: training is seeded, so the same spec gives the same forest.
            # It is made in the train venv so the pickle matches the scikit-learn that loads it.
            model_path = tmp / "forest.pkl"
            servers.in_train_venv("--baseline-model", str(model_path))

            predict, predict_port = servers.start_function("predict", env, tmp / "predict.log")
            processes.append(predict)
            http_load.first_correct_prediction(predict_port, predict, time.monotonic() + 60)
            onnx_serving = measurements.serving(predict_port, predict.pid, quick)
            servers.stop(predict)

            baseline, baseline_port = servers.start_baseline(model_path, tmp / "baseline.log")
            processes.append(baseline)
            http_load.first_correct_prediction(baseline_port, baseline, time.monotonic() + 60)
            sklearn_serving = measurements.serving(baseline_port, baseline.pid, quick)
            servers.stop(baseline)

            runs = 3 if quick else 5
            onnx_cold = measurements.cold_starts(
                lambda: servers.start_function("predict", env, tmp / "cold.log"), runs
            )
            sklearn_cold = measurements.cold_starts(
                lambda: servers.start_baseline(model_path, tmp / "cold-baseline.log"), runs
            )
            training_times = {} if quick else measurements.training_times(store_url, token, tmp)
        finally:
            for process in processes:
                servers.stop(process)
            stop_iris_server(store)

    result = {
        "benchmark": "functions",
        "model": {"dataset": "iris", **SPEC, "version": trained["model"]["version"]},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            **calibration,
        },
        "onnxruntime_function": {**onnx_serving, "cold_start": onnx_cold},
        "sklearn_baseline": {**sklearn_serving, "cold_start": sklearn_cold},
        "training": training_times,
    }
    measured = {
        "warm_p50_ms_1_row": onnx_serving["warm_1_row"]["p50_ms"],
        "requests_per_second_1_row": onnx_serving["throughput_1_row"]["requests_per_second"],
        "cold_start_ms": onnx_cold["median_ms"],
        "rss_mb": onnx_serving["rss_mb"],
    }
    result["targets"] = {
        name: {
            "target": target,
            "measured": measured[name],
            "met": measured[name] >= target if name.startswith("requests") else measured[name] <= target,
        }
        for name, target in TARGETS.items()
    }
    # What the machine's other work hides: the server's capacity given a core, and the CPU a cold start burns.
    result["targets"]["requests_per_second_1_row"]["per_core"] = onnx_serving["throughput_1_row"][
        "requests_per_second_per_core"
    ]
    result["targets"]["cold_start_ms"]["cpu_ms"] = onnx_cold["median_cpu_ms"]
    return result


def summary(result: dict[str, Any]) -> str:
    """One line: the function's numbers, scikit-learn's in parentheses."""
    onnx, sk = result["onnxruntime_function"], result["sklearn_baseline"]
    met = sum(t["met"] for t in result["targets"].values())
    pairs = [
        ("warm p50 1 row", onnx["warm_1_row"]["p50_ms"], sk["warm_1_row"]["p50_ms"], "ms"),
        ("100 rows", onnx["warm_100_rows"]["p50_ms"], sk["warm_100_rows"]["p50_ms"], "ms"),
        (
            "throughput",
            onnx["throughput_1_row"]["requests_per_second"],
            sk["throughput_1_row"]["requests_per_second"],
            "req/s",
        ),
        (
            "per core",
            onnx["throughput_1_row"]["requests_per_second_per_core"],
            sk["throughput_1_row"]["requests_per_second_per_core"],
            "req/s",
        ),
        ("cold start", onnx["cold_start"]["median_ms"], sk["cold_start"]["median_ms"], "ms"),
        ("RSS", onnx["rss_mb"], sk["rss_mb"], "MB"),
    ]
    numbers = "; ".join(f"{name} {mine} {unit} ({theirs})" for name, mine, theirs, unit in pairs)
    load = result["machine"]["loadavg_before"][0]
    targets = f"targets met {met}/{len(result['targets'])}"
    return f"functions (scikit-learn in parentheses): {numbers}; {targets}; load average {load}"
