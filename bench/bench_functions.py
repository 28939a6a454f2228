"""Benchmark of the ML functions on this machine, against serving the same model with scikit-learn in the
same run.

Measures, for a 100-tree random forest on iris (the model the issue's numbers are about):
  - warm predict latency p50/p99 over one keep-alive connection, 1 row and 100 rows per request;
  - requests per second of one process (closed loop, several connections), 1 row and 100 rows;
  - cold start: process start -> first correct prediction, the model fetched from a real iris-server;
  - memory (RSS, and its private part) of a warm predict process;
  - training time per allow-listed estimator through the train function (fit, ONNX export, check, upload).
The baseline is the same HTTP server (uvicorn, httptools, uvloop) with a Starlette app that parses the JSON
and predicts with the scikit-learn estimator unpickled from local disk, without input checks and without a
store fetch: a setup that favours it. Everything runs on 127.0.0.1; the functions run in their own venvs
(local_openfaas.funcenv), as in the tests. The machine's load and speed are recorded alongside.

    .venv/bin/python bench/bench_functions.py      # about three minutes; JSON to bench/results/functions.json
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import pickle
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "functions.json"
ADMIN_TOKEN = "bench-functions-admin-token"
MODEL = "iris"
SPEC = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 100}}
ROW = [6.3, 3.3, 6.0, 2.5]  # a virginica from the dataset
TARGETS = {"warm_p50_ms_1_row": 1.0, "requests_per_second_1_row": 3000, "cold_start_ms": 300, "rss_mb": 80}


# -- processes -----------------------------------------------------------------------------------------------


def _free_port() -> int:
    from mlfunctions_harness.processes import free_port

    return free_port()


def _start_function(name: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    from local_openfaas import funcenv

    folder = funcenv.FUNCTIONS_DIR / name
    port = _free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            funcenv.function_command(folder),
            env=funcenv.function_environment(folder, port, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port


def _start_baseline(model_path: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """This script again, as the baseline server, in the train function's venv (which has scikit-learn)."""
    from local_openfaas import funcenv

    folder = funcenv.FUNCTIONS_DIR / "train"
    port = _free_port()
    env = funcenv.function_environment(folder, port)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(funcenv.function_python(folder)), __file__, "--baseline-server", str(model_path), str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port


def _in_train_venv(*args: str) -> None:
    from local_openfaas import funcenv

    folder = funcenv.FUNCTIONS_DIR / "train"
    subprocess.run(
        [str(funcenv.function_python(folder)), __file__, *args],
        env=funcenv.function_environment(folder, 0),
        check=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _memory_mb(pid: int) -> dict[str, float]:
    """RSS (what the target is about), its peak, and the private part (USS: what another replica would not
    share)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {key: int(value) for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE)}
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    private = sum(int(v) for v in re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+) kB", rollup, re.MULTILINE))
    return {
        "rss_mb": round(kb["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(kb["VmHWM"] / 1024, 1),
        "private_mb": round(private / 1024, 1),
    }


def _cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


# -- clients -------------------------------------------------------------------------------------------------


def _body(rows: int) -> bytes:
    return json.dumps({"instances": [ROW] * rows}).encode()


def _first_correct_prediction(port: int, process: subprocess.Popen, deadline: float) -> None:
    body = _body(1)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before answering")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status == 200 and json.loads(answer)["predictions"] == ["virginica"]:
                return
            time.sleep(0.002)
        except ConnectionRefusedError:
            time.sleep(0.002)
        finally:
            connection.close()
    raise RuntimeError("no correct prediction before the deadline")


def _latencies(port: int, rows: int, requests: int, seconds: float, warmup: int = 300) -> dict[str, float]:
    """Sequential requests on one keep-alive connection: what one client waits per request. Stops after
    `requests` or `seconds`, whichever comes first (a slow baseline gets fewer samples, not a longer run)."""
    body, headers = _body(rows), {"Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: list[float] = []
    warm_until = time.monotonic() + seconds / 5
    for _ in range(warmup):
        _roundtrip(connection, body, headers)
        if time.monotonic() > warm_until:
            break
    deadline = time.monotonic() + seconds
    while len(samples) < requests and time.monotonic() < deadline:
        started = time.perf_counter_ns()
        _roundtrip(connection, body, headers)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    connection.close()
    return _percentiles(samples)


def _roundtrip(connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> None:
    connection.request("POST", "/", body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {answer[:200]!r}")


def _throughput(port: int, pid: int, rows: int, connections: int, seconds: float) -> dict[str, Any]:
    """Closed loop: `connections` keep-alive clients send the next request as soon as the answer is in.

    The load generator shares this machine's cores with the server (and with whatever else runs), so the
    server's own CPU time per request is measured too: 1 / that is what one process serves with a core to
    itself."""
    import uvloop

    body = _body(rows)
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    samples: list[float] = []
    failures = 0

    async def client(end: float) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < end:
            started = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            samples.append((time.perf_counter_ns() - started) / 1e6)
            failures += not head.startswith(b"HTTP/1.1 200")
        writer.close()

    async def run() -> tuple[float, float]:
        await asyncio.gather(*(client(time.perf_counter() + 0.5) for _ in range(connections)))  # warm-up
        samples.clear()
        cpu_before, started = _cpu_ms(pid), time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started, _cpu_ms(pid) - cpu_before

    elapsed, server_cpu_ms = uvloop.run(run())
    if failures:
        raise RuntimeError(f"{failures} requests failed under load")
    cpu_per_request_us = server_cpu_ms * 1000 / len(samples)
    return {
        "requests_per_second": round(len(samples) / elapsed),
        "connections": connections,
        "latency_under_load_ms": _percentiles(samples),
        "server_cpu_share": round(server_cpu_ms / 1000 / elapsed, 2),
        "server_cpu_per_request_us": round(cpu_per_request_us, 1),
        "requests_per_second_per_core": round(1e6 / cpu_per_request_us),
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
        "n": len(ordered),
    }


# -- the measurements ----------------------------------------------------------------------------------------


def _serving(port: int, pid: int, quick: bool) -> dict[str, Any]:
    scale = 0.3 if quick else 1.0
    result = {
        "warm_1_row": _latencies(port, 1, int(5000 * scale), seconds=8 * scale),
        "warm_100_rows": _latencies(port, 100, int(1500 * scale), seconds=5 * scale),
        "throughput_1_row": _throughput(port, pid, 1, connections=8, seconds=3 * scale),
        "throughput_100_rows": _throughput(port, pid, 100, connections=8, seconds=3 * scale),
    }
    result.update(_memory_mb(pid))
    return result


def _cold_starts(start, runs: int) -> dict[str, Any]:
    """Wall time from process start to the first correct answer, and the CPU the process spent to get there
    (less sensitive than wall time to other work on a shared machine)."""
    times, cpu = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process, port = start()
        try:
            _first_correct_prediction(port, process, time.monotonic() + 60)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append(_cpu_ms(process.pid))
        finally:
            _stop(process)
    return {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "median_cpu_ms": statistics.median(cpu),
        "runs": runs,
    }


def _calibration(python: Path, runs: int = 7) -> dict[str, float]:
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


def _training_times(store_url: str, token: str, log_dir: Path) -> dict[str, Any]:
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
        process, port = _start_function("train", env, log_dir / "train.log")
        try:
            _wait_healthy(port, process, log_dir / "train.log")
            for name in sorted(names):
                params = {"max_iter": 2000} if name.startswith("MLP") else {}
                started = time.perf_counter()
                answer = _post_json(port, {"estimator": name, "dataset": dataset, "params": params})
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
            _stop(process)
    return times


def _wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    from mlfunctions_harness.processes import wait_healthy

    wait_healthy(f"http://127.0.0.1:{port}/_/health", process, "the function", log, timeout=120)


def _post_json(port: int, document: dict[str, Any]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/", json.dumps(document).encode(), {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"{response.status}: {answer}")
    return answer


def run(quick: bool) -> dict[str, Any]:
    from iris_client import ModelStoreClient
    from mlfunctions_harness.model_store import start_iris_server, stop_iris_server

    from local_openfaas import funcenv

    predict_python = funcenv.function_python(funcenv.FUNCTIONS_DIR / "predict")
    funcenv.function_python(funcenv.FUNCTIONS_DIR / "train")
    load_before = os.getloadavg()
    calibration = _calibration(predict_python)
    with tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp_dir:
        tmp = Path(tmp_dir)
        store_url, store = start_iris_server(tmp / "store", ADMIN_TOKEN)
        processes: list[subprocess.Popen] = []
        try:
            with ModelStoreClient(store_url, ADMIN_TOKEN) as admin:
                token = admin.create_token(models=["*"], rights=["read", "write"]).token
            env = {"MODEL_NAME": MODEL, "MODEL_STORE_URL": store_url, "MODEL_STORE_TOKEN": token}

            train, train_port = _start_function("train", env, tmp / "train.log")
            processes.append(train)
            _wait_healthy(train_port, train, tmp / "train.log")
            trained = _post_json(train_port, SPEC)
            _stop(train)

            # The same model for the baseline: training is seeded, so the same spec gives the same forest. It
            # is
            # made in the train venv so the pickle matches the scikit-learn that loads it.
            model_path = tmp / "forest.pkl"
            _in_train_venv("--baseline-model", str(model_path))

            predict, predict_port = _start_function("predict", env, tmp / "predict.log")
            processes.append(predict)
            _first_correct_prediction(predict_port, predict, time.monotonic() + 60)
            onnx_serving = _serving(predict_port, predict.pid, quick)
            _stop(predict)

            baseline, baseline_port = _start_baseline(model_path, tmp / "baseline.log")
            processes.append(baseline)
            _first_correct_prediction(baseline_port, baseline, time.monotonic() + 60)
            sklearn_serving = _serving(baseline_port, baseline.pid, quick)
            _stop(baseline)

            runs = 3 if quick else 5
            onnx_cold = _cold_starts(lambda: _start_function("predict", env, tmp / "cold.log"), runs)
            sklearn_cold = _cold_starts(lambda: _start_baseline(model_path, tmp / "cold-baseline.log"), runs)
            training_times = {} if quick else _training_times(store_url, token, tmp)
        finally:
            for process in processes:
                _stop(process)
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


# -- the scikit-learn baseline server (runs in the train function's venv) ---------------------------------


def baseline_model(path: str) -> None:
    sys.path.insert(0, str(REPO / "functions" / "train"))
    import datasets
    import training
    import training_request

    iris = datasets.bundled("iris")
    spec = training_request.TrainingSpec("iris", SPEC["estimator"], SPEC["params"], 0.2, 42)
    estimator = training.train(iris, spec).estimator
    Path(path).write_bytes(pickle.dumps({"estimator": estimator, "classes": iris.classes}))


def baseline_server(model_path: str, port: int) -> None:
    import numpy as np
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    loaded = pickle.loads(Path(model_path).read_bytes())
    estimator, classes = loaded["estimator"], loaded["classes"]

    async def predict(request: Request) -> JSONResponse:
        document = json.loads(await request.body())
        rows = np.asarray(document["instances"], dtype=np.float64)
        labels = estimator.predict(rows).tolist()
        return JSONResponse({"predictions": [classes[label] for label in labels]})

    app = Starlette(routes=[Route("/", predict, methods=["POST"])])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples and no training table (a smoke run)"
    )
    parser.add_argument("--baseline-server", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--baseline-model", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_model:
        baseline_model(args.baseline_model)
        return
    if args.baseline_server:
        baseline_server(args.baseline_server[0], int(args.baseline_server[1]))
        return
    result = run(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(summary(result))


if __name__ == "__main__":
    main()
