"""The study's measured inputs, on this machine, in the same run: for the monolith holding 1, 5 and 20 models
its RSS, start time, warm latency and CPU per request (called directly); for the process backend behind the local
gateway cold starts with and without the warm pool, warm latency, CPU per request (replica + gateway), the RSS of
a predict replica, a train replica and a pool process (zygote). Pod figures come from pod_inputs.py.

It reuses bench_stack's machinery (deploy, cold_starts, timed_requests, ...): run from bench/bench_study.py."""

from __future__ import annotations

import statistics
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from mlfunctions_harness import processes
from mlfunctions_harness.processes import free_port, wait_for
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import pool
from local_openfaas.runtime.load import cpu_seconds, rss_bytes

import bench_stack as stack
from stack_measures import is_zygote

MONOLITH_PROGRAM = Path(__file__).with_name("monolith_models.py")
MODEL_BASE = "iris"


class PeakRss:
    """The highest RSS of one process while the block runs (sampled every 0.1 s)."""

    def __init__(self, pid: int):
        self.pid, self.peak_mib = pid, (rss_bytes(pid) or 0) / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, (rss_bytes(self.pid) or 0) / 2**20)

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak_mib = max(self.peak_mib, (rss_bytes(self.pid) or 0) / 2**20)


def mib(pid: int) -> float:
    return round((rss_bytes(pid) or 0) / 2**20, 1)


def interpreter_of(pid: int) -> str | None:
    """predict or train: which function virtualenv's python a process runs (a pool process included)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return None
    return next((kind for kind in ("predict", "train") if f"/venvs/{kind}-" in argv0), None)


def _latency_summary(samples: list[float]) -> dict:
    return {"requests": len(samples), "p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(stack.percentile(samples, 99), 3)}


def _timed_posts(url: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        requests.post(url, json={}, timeout=600).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


# ---- the monolith ----

def monolith(models: int, store_url: str, token: str, work: Path, cleanup: ExitStack, requests_each: int,
             trains: int, train_models: bool) -> dict:
    """Start the monolith with `models` models; train them first if asked (the first monolith does it for all);
    then its start time, RSS at rest and peak, warm latency and CPU per request."""
    train_dir = funcenv.FUNCTIONS_DIR / "train"
    port = free_port()
    env = funcenv.function_environment(train_dir, port=port, extra={
        **stack.train_env(store_url, token), "MODEL_NAME": MODEL_BASE, "MONOLITH_MODELS": str(models)})
    started = time.perf_counter()
    process = processes.spawn([str(funcenv.function_python(train_dir)), str(MONOLITH_PROGRAM)],
                              work / f"monolith-{models}.log", env=env)
    cleanup.callback(processes.stop, process)
    processes.wait_healthy(f"http://127.0.0.1:{port}/_/health", process, "the monolith",
                           work / f"monolith-{models}.log", 180)
    start_s = time.perf_counter() - started
    start_cpu = cpu_seconds(process.pid)
    base = f"http://127.0.0.1:{port}"
    if train_models:
        for index in range(models):
            requests.post(f"{base}/train-{index}/", json={}, timeout=600).raise_for_status()
    for index in range(models):  # every model loaded, as a monolith serving them all would be
        stack.timed_requests(port, f"/predict-{index}/", 20)
    rest_mib = mib(process.pid)
    cpu_before = cpu_seconds(process.pid)
    with PeakRss(process.pid) as peak:
        predict = stack.timed_requests(port, "/predict-0/", requests_each)
        cpu_predict = (cpu_seconds(process.pid) - cpu_before) / requests_each
        cpu_before = cpu_seconds(process.pid)
        train = _timed_posts(f"{base}/train-0/", trains)
        cpu_train = (cpu_seconds(process.pid) - cpu_before) / trains
    processes.stop(process)
    return {"models": models, "start_s": round(start_s, 3), "start_cpu_s": round(start_cpu, 3),
            "rss_mib": rest_mib, "peak_rss_mib": round(peak.peak_mib, 1),
            "predict": {**_latency_summary(predict), "cpu_s": round(cpu_predict, 6)},
            "train": {**_latency_summary(train), "cpu_s": round(cpu_train, 4)},
            "predict_samples_ms": [round(v, 3) for v in predict], "train_samples_ms": [round(v, 2) for v in train]}


# ---- the process backend ----

def _function_pids(gateway, kind: str) -> list[int]:
    return [pid for pid in processes.descendants(gateway.process.pid)
            if not is_zygote(pid) and interpreter_of(pid) == kind]


def _zygotes(gateway) -> dict[str, float]:
    found = {}
    for pid in processes.descendants(gateway.process.pid):
        kind = interpreter_of(pid)
        if kind and is_zygote(pid) and kind not in found:
            found[kind] = mib(pid)
    return found


def process_backend(store_url: str, token: str, work: Path, cleanup: ExitStack, samples: int,
                    requests_each: int, trains: int) -> dict:
    result: dict = {}
    for mode, pool_size in (("with_pool", 1), ("without_pool", 0)):
        gateway = gateway_process.start(free_port(), work / f"gw-{mode}", stack_files=[funcenv.STACK_FILE],
                                        pool_size=pool_size, autoscale_interval=0.5)
        cleanup.callback(gateway.stop)
        env = {**stack.predict_env(store_url, token), "MODEL_NAME": f"{MODEL_BASE}-0"}
        stack.deploy(gateway, "cold-predict", stack.PREDICT_IMAGE, env,
                     {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "10m"})
        wait_for(lambda g=gateway: stack.describe(g, "cold-predict")["availableReplicas"] == 1, 300, "a replica")
        stack.cold_starts(gateway, 1, pooled=pool_size > 0, learned=False)  # the pool learns the imports
        cold = stack.cold_starts(gateway, samples, pooled=pool_size > 0)
        replica = _function_pids(gateway, "predict")[0]
        cold["start_cpu_s"] = round(cpu_seconds(replica), 3)  # a pooled one's includes its zygote's imports
        result[mode] = {"cold_start": cold}
        if mode == "with_pool":
            result["zygote_mib"] = _zygotes(gateway)
            result["predict"] = _warm_predict(gateway, replica, requests_each)
            result["train"] = _train_replica(gateway, store_url, token, trains)
            result["zygote_mib"].update({k: v for k, v in _zygotes(gateway).items() if k not in result["zygote_mib"]})
        else:  # a train replica started fresh: its start and its start's CPU
            fresh = _train_replica(gateway, store_url, token, 1)
            result[mode]["train_start"] = {key: fresh[key] for key in
                                           ("replica_start_s", "replica_start_from_pool", "start_cpu_s")}
        gateway.stop()
    result["refill_s"] = round(pool.REFILL_DELAY + result["without_pool"]["cold_start"]["replica_start_median_ms"]
                               / 1000, 3)
    return result


def _warm_predict(gateway, replica: int, count: int) -> dict:
    port = int(gateway.url.rsplit(":", 1)[1])
    stack.timed_requests(port, "/function/cold-predict", 200)
    rest = mib(replica)
    cpu_replica, cpu_gateway = cpu_seconds(replica), cpu_seconds(gateway.process.pid)
    with PeakRss(replica) as peak:
        samples = stack.timed_requests(port, "/function/cold-predict", count)
    return {**_latency_summary(samples), "rss_mib": rest, "peak_rss_mib": round(peak.peak_mib, 1),
            "cpu_s": round((cpu_seconds(replica) - cpu_replica) / count, 6),
            "gateway_cpu_s": round((cpu_seconds(gateway.process.pid) - cpu_gateway) / count, 6),
            "samples_ms": [round(v, 3) for v in samples]}


def _train_replica(gateway, store_url: str, token: str, count: int) -> dict:
    env = {**stack.train_env(store_url, token), "MODEL_NAME": f"{MODEL_BASE}-trainer"}
    stack.deploy(gateway, "study-trainer", stack.TRAIN_IMAGE, env, {})
    wait_for(lambda: stack.describe(gateway, "study-trainer")["availableReplicas"] == 1, 300, "the trainer")
    replica = _function_pids(gateway, "train")[0]
    start_cpu = cpu_seconds(replica)
    url = f"{gateway.url}/function/study-trainer"
    requests.post(url, json={}, timeout=600).raise_for_status()  # its first training loads what it needs
    cpu_before, gateway_before = cpu_seconds(replica), cpu_seconds(gateway.process.pid)
    with PeakRss(replica) as peak:
        samples = _timed_posts(url, count)
    started = [e for e in stack.gateway_events(gateway, "replica ready") if e["function"] == "study-trainer"][0]
    return {**_latency_summary(samples), "rss_mib": mib(replica), "peak_rss_mib": round(peak.peak_mib, 1),
            "replica_start_s": started["startSeconds"], "replica_start_from_pool": started["warm"],
            "start_cpu_s": round(start_cpu, 3),
            "cpu_s": round((cpu_seconds(replica) - cpu_before) / count, 4),
            "gateway_cpu_s": round((cpu_seconds(gateway.process.pid) - gateway_before) / count, 6),
            "samples_ms": [round(v, 2) for v in samples]}
