"""Process-backend cold start with and without the shared warm pool (#11.2), medians, beside the issue's targets
and anchors.

    .venv/bin/python bench/bench_pool.py [--samples 8] [--quick]

A function scaled to zero -> its first answer through the local gateway (standalone, real processes), for
  - the real predict function (its own virtualenv: onnxruntime, uvicorn; the model fetched from a real
    iris-server on start), and
  - the stdlib echo function of tests/local_openfaas (no library to import: what the runtime itself costs),
each with --pool-size 1 and --pool-size 0. Each sample is split into the replica's start (launch -> healthy,
from the gateway's "replica ready" event) and the rest (the hold in the gateway, the proxied request). Also the
pool's processes and resident memory per environment, read from the gateway's /metrics
(local_openfaas_pool_*), and the learned imports' share (a pool process that has not yet learned the function's
imports is measured too, as "with pool, not learned").

Prints one JSON document and a one-line summary; writes bench/results/pool.json (not with --quick).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests
import yaml
from bench_stack import (ADMIN_TOKEN, PREDICT_IMAGE, ROW, TRAIN_IMAGE, deploy, describe, gateway_events,
                         percentile, predict_env, scale, train_env)
from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.processes import free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import pool

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ECHO_DIR = ROOT / "tests" / "local_openfaas" / "echo_function"
ECHO_IMAGE = "localhost/echo:bench"
TARGETS_MS = {"without_pool": 150.0, "with_pool": 25.0}  # issue 11's targets for the process backend
ANCHORS_MS = {"fission_specialization": 100.0, "seed_container_start": 400.0}


def _pool_learned(gateway, python: str) -> bool:
    """The pool of this interpreter has a process ready that preloads what its functions were seen importing."""
    events = [e for e in gateway_events(gateway, "warm process ") if e.get("python") == python]
    return bool(events) and events[-1]["message"] == "warm process ready" and events[-1]["learned"]


def _pool_ready(gateway, python: str) -> bool:
    events = [e for e in gateway_events(gateway, "warm process ") if e.get("python") == python]
    return bool(events) and events[-1]["message"] == "warm process ready"


def pool_gauges(gateway) -> dict[str, dict[str, float]]:
    text = requests.get(gateway.url + "/metrics", timeout=10).text
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("local_openfaas_pool_processes", "local_openfaas_pool_rss_bytes"):
            for sample in family.samples:
                key = "processes" if family.name.endswith("processes") else "rss_mib"
                value = sample.value if key == "processes" else round(sample.value / 2**20, 1)
                found.setdefault(sample.labels["environment"], {})[key] = value
    return found


def _post(gateway, name: str, body: bytes) -> float:
    """One POST through the gateway on a fresh connection (http.client: the client's own cost stays out of the
    number), in ms."""
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    began = time.perf_counter()
    connection.request("POST", f"/function/{name}", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    elapsed = (time.perf_counter() - began) * 1000
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"request to {name} failed: {response.status} {answer[:300]!r}")
    return elapsed


def _model_fetch_ms(gateway, name: str) -> float | None:
    """The predict replica's own "model loaded" seconds (fetch from the store + ONNX session), from its log."""
    logs = sorted((gateway.state_dir / "logs").rglob(f"{name}-*.log"), key=lambda p: p.stat().st_mtime)
    for line in reversed(logs[-1].read_text().splitlines() if logs else []):
        if '"model loaded"' in line:
            return round(json.loads(line)["seconds"] * 1000, 1)
    return None


def cold_starts(gateway, name: str, python: str, samples: int, pooled: bool, learned: bool, body: bytes) -> dict:
    """Scale to zero, let the machine settle, then time the first answer through the gateway."""
    totals, starts, warm, fetches, warm_requests = [], [], [], [], []
    for _ in range(samples):
        scale(gateway, name, 0)
        wait_for(lambda: describe(gateway, name)["availableReplicas"] == 0 and describe(gateway, name)["replicas"] == 0,
                 30, "scale to zero")
        if pooled:
            wait_for(lambda: (_pool_learned if learned else _pool_ready)(gateway, python), 60, "a pool process")
        time.sleep(1.0)  # the stopped replica's exit and any refill are over: a quiet machine
        elapsed = _post(gateway, name, body)
        warm_requests.append(_post(gateway, name, body))  # the same path once a replica is up: the baseline
        ready = [e for e in gateway_events(gateway, "replica ready") if e["function"] == name][-1]
        fetches.append(_model_fetch_ms(gateway, name))
        totals.append(elapsed)
        starts.append(ready["startSeconds"] * 1000)
        warm.append(ready["warm"])
        time.sleep(pool.LEARN_AT[0] + 0.5)  # the replica lives a little (and reports its imports to the pool)
    rest = [t - s for t, s in zip(totals, starts)]
    return {"samples": samples, "from_pool": sum(warm), "median_ms": round(statistics.median(totals), 1),
            "p90_ms": round(percentile(totals, 90), 1), "min_ms": round(min(totals), 1),
            "replica_start_median_ms": round(statistics.median(starts), 1),
            "gateway_and_request_median_ms": round(statistics.median(rest), 1),
            **({"model_fetch_median_ms": round(statistics.median(fetches), 1)} if None not in fetches else {}),
            "warm_request_median_ms": round(statistics.median(warm_requests), 1),
            "samples_ms": [round(t, 1) for t in totals]}


def measure(work: Path, mode: str, pool_size: int, samples: int, store_url: str, token: str) -> dict:
    programs = work / "programs.yaml"
    programs.write_text(yaml.safe_dump({ECHO_IMAGE: {"python": sys.executable, "argv": [str(ECHO_DIR / "index.py")],
                                                     "cwd": str(ECHO_DIR)}}))
    gateway = gateway_process.start(free_port(), work / f"gw-{mode}", stack_files=[funcenv.STACK_FILE],
                                    programs=[programs], pool_size=pool_size, autoscale_interval=0.5)
    try:
        labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "10m"}
        deploy(gateway, "cold-predict", PREDICT_IMAGE, predict_env(store_url, token), labels)
        deploy(gateway, "cold-echo", ECHO_IMAGE, {}, labels)
        for name in ("cold-predict", "cold-echo"):
            wait_for(lambda n=name: describe(gateway, n)["availableReplicas"] == 1, 300, f"{name}'s first replica")
        predict_python = str(funcenv.function_python(funcenv.FUNCTIONS_DIR / "predict"))
        result = {}
        for name, python, body in (("cold-predict", predict_python, ROW), ("cold-echo", sys.executable, b"{}")):
            pooled = pool_size > 0
            if pooled:  # before the pool has learned the function's imports: the first pool process
                result[f"{name}_not_learned"] = cold_starts(gateway, name, python, 1, True, False, body)
            result[name] = cold_starts(gateway, name, python, samples, pooled, pooled, body)
        result["pool"] = pool_gauges(gateway)
        return result
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="3 samples, nothing written")
    options = parser.parse_args()
    samples = 3 if options.quick else options.samples
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp, ExitStack() as cleanup:
        work = Path(tmp)
        store_url, store = start_iris_server(work / "store", ADMIN_TOKEN)
        cleanup.callback(stop_iris_server, store)
        token = ModelStoreClient(store_url, ADMIN_TOKEN).create_token(models=["*"], rights=["read", "write"]).token
        # A model to serve: trained once, through the train function, on a gateway of its own.
        trainer = gateway_process.start(free_port(), work / "gw-train", stack_files=[funcenv.STACK_FILE], pool_size=0)
        try:
            deploy(trainer, "trainer", TRAIN_IMAGE, train_env(store_url, token), {})
            requests.post(f"{trainer.url}/function/trainer", json={}, timeout=600).raise_for_status()
        finally:
            trainer.stop()
        runs = {mode: measure(work, mode, size, samples, store_url, token)
                for mode, size in (("with_pool", 1), ("without_pool", 0))}

    with_pool, without = runs["with_pool"]["cold-predict"], runs["without_pool"]["cold-predict"]
    result = {
        "benchmark": "pool",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"},
        "setup": "standalone gateway+runtime, real processes; the predict function in its own virtualenv with its "
                 "model from a real iris-server; the echo function (stdlib) for the runtime's own cost; medians",
        "command": "python bench/bench_pool.py" + (f" --samples {options.samples}" if options.samples != 8 else ""),
        "targets_ms": TARGETS_MS, "anchors_ms": ANCHORS_MS,
        "runs": runs,
        "met": {"without_pool": without["median_ms"] <= TARGETS_MS["without_pool"],
                "with_pool": with_pool["median_ms"] <= TARGETS_MS["with_pool"]},
        "seconds": round(time.monotonic() - began, 1),
    }
    if not options.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "pool.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    echo_with, echo_without = runs["with_pool"]["cold-echo"], runs["without_pool"]["cold-echo"]
    print(f"pool: predict cold start {without['median_ms']} ms without pool (target <= {TARGETS_MS['without_pool']:g}), "
          f"{with_pool['median_ms']} ms with (target <= {TARGETS_MS['with_pool']:g}); stdlib echo "
          f"{echo_without['median_ms']} / {echo_with['median_ms']} ms; anchors Fission specialization "
          f"~{ANCHORS_MS['fission_specialization']:g} ms, seed container start ~{ANCHORS_MS['seed_container_start']:g} ms; "
          f"pool memory {runs['with_pool']['pool']}")


if __name__ == "__main__":
    main()
