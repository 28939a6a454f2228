"""Benchmark of the local OpenFaaS runtime with the real iris functions and a real iris-server.

    .venv/bin/python bench/bench_stack.py [--quick]

1. Cold start: a predict function scaled to zero -> its first answer through the gateway, with the pre-warmed
   pool and without it (a second gateway with --pool-size 0), medians of N.
2. Warm latency: the same running replica called through the gateway and directly (keep-alive connections,
   interleaved blocks); the gateway's overhead is the difference of the medians.
3. The study the project comes from: the same train+predict workload (Locust, headless, CSV statistics) served
   by one long-running monolith process (bench/monolith.py: both handlers in one process) and by functions
   that scale to zero, under a steady and a bursty pattern: p50/p99 latency, cold starts, memory-seconds.

Kubernetes is not on any of these request paths (the runtime reads Functions from it, nothing more), so the
runtime runs in its standalone mode here and the functions are deployed through the gateway's /system API.
Prints one JSON document and a one-line summary; writes bench/results/stack.json, stack.png and the Locust CSVs
under bench/results/locust/. Takes about four minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness import processes
from mlfunctions_harness.processes import free_port, wait_for
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import pool
from stack_measures import MemorySampler, is_zygote, locust

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PREDICT_IMAGE = "ghcr.io/mlfunctions/predict:0.1.0"
TRAIN_IMAGE = "ghcr.io/mlfunctions/train:0.1.0"
ROW = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
TARGETS = {"cold_start_without_pool_ms": 300.0, "cold_start_with_pool_ms": 50.0, "gateway_overhead_p50_ms": 0.5}
ADMIN_TOKEN = "bench-admin-token-0123456789"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# ---- the functions, deployed through the gateway's API ----

def deploy(gateway, name: str, image: str, env: dict, labels: dict) -> None:
    body = {"service": name, "image": image, "envVars": env, "labels": labels}
    response = requests.post(f"{gateway.url}/system/functions", json=body, auth=gateway.basic_auth, timeout=600)
    response.raise_for_status()


def describe(gateway, name: str) -> dict:
    return requests.get(f"{gateway.url}/system/function/{name}", auth=gateway.basic_auth, timeout=10).json()


def scale(gateway, name: str, replicas: int) -> None:
    requests.post(f"{gateway.url}/system/scale-function/{name}", json={"serviceName": name, "replicas": replicas},
                  auth=gateway.basic_auth, timeout=10).raise_for_status()


def gateway_events(gateway, message: str) -> list[dict]:
    """The gateway's structured log events whose message starts with `message`."""
    return [json.loads(line) for line in gateway.log_path.read_text().splitlines()
            if f'"message": "{message}' in line]


def predict_env(store_url: str, token: str) -> dict:
    return {"MODEL_NAME": "iris", "MODEL_VERSION": "", "TASK": "predict", "MODEL_STORE_URL": store_url,
            "MODEL_STORE_TOKEN": token, "MODEL_REFRESH_SECONDS": "30"}


def train_env(store_url: str, token: str) -> dict:
    return {"MODEL_NAME": "iris", "MODEL_VERSION": "", "TASK": "train", "MODEL_STORE_URL": store_url,
            "MODEL_STORE_TOKEN": token, "TRAIN_DATASET": "iris", "TRAIN_ESTIMATOR": "LogisticRegression",
            "TRAIN_PARAMS": '{"max_iter": 200}', "TRAIN_TEST_SIZE": "0.2"}


# ---- 1. cold start ----

def cold_starts(gateway, samples: int, pooled: bool, learned: bool = True) -> dict:
    """Scale to zero, let the machine settle, then time the first answer through the gateway."""
    name = "cold-predict"
    times, starts, warm = [], [], []
    for _ in range(samples):
        scale(gateway, name, 0)
        wait_for(lambda: describe(gateway, name)["availableReplicas"] == 0
                 and describe(gateway, name)["replicas"] == 0, 30, "scale to zero")
        if pooled:  # a pre-warmed process that has preloaded what the function imports is waiting
            wait_for(lambda: _pool_ready(gateway, "predict", learned), 60, "a pre-warmed process")
        time.sleep(1.0)  # the stopped replica's exit and any refill are over: a quiet machine
        started = time.perf_counter()
        response = requests.post(f"{gateway.url}/function/{name}", data=ROW, timeout=60,
                                 headers={"Content-Type": "application/json"})
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"cold request failed: {response.status_code} {response.text}")
        time.sleep(pool.LEARN_AT[0] + 0.5)  # a replica lives a little, as after a real request (and reports)
        ready = gateway_events(gateway, "replica ready")[-1]
        times.append(elapsed * 1000)
        starts.append(ready["startSeconds"] * 1000)
        warm.append(ready["warm"])
    return {"samples": samples, "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(percentile(times, 90), 1), "min_ms": round(min(times), 1),
            "replica_start_median_ms": round(statistics.median(starts), 1),
            "from_pool": sum(warm), "samples_ms": [round(t, 1) for t in times]}


def _pool_ready(gateway, python_part: str, learned: bool = True) -> bool:
    """The pool of this interpreter has a process ready (that preloads what the function was seen importing)."""
    events = [e for e in gateway_events(gateway, "warm process ") if python_part in e.get("python", "")]
    return bool(events) and events[-1]["message"] == "warm process ready" and (events[-1]["learned"] or not learned)


# ---- 2. warm latency ----

def timed_requests(port: int, path: str, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", path, body=ROW, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"warm request to {port}{path} failed: {response.status}")
    connection.close()
    return latencies


def warm_latency(gateway, name: str, blocks: int, per_block: int) -> dict:
    scale(gateway, name, 1)
    wait_for(lambda: describe(gateway, name)["availableReplicas"] == 1, 60, "a warm replica")
    replica_port = [e for e in gateway_events(gateway, "replica ready") if e["function"] == name][-1]["port"]
    gateway_port = int(gateway.url.rsplit(":", 1)[1])
    timed_requests(replica_port, "/", 200)  # warm both paths up (connections, caches)
    timed_requests(gateway_port, f"/function/{name}", 200)
    direct, through = [], []
    for _ in range(blocks):  # interleaved, so drift in the machine's load hits both alike
        direct += timed_requests(replica_port, "/", per_block)
        through += timed_requests(gateway_port, f"/function/{name}", per_block)
    summary = {
        "requests_each": len(direct),
        "direct": {"p50_ms": round(statistics.median(direct), 3), "p99_ms": round(percentile(direct, 99), 3)},
        "gateway": {"p50_ms": round(statistics.median(through), 3), "p99_ms": round(percentile(through, 99), 3)},
    }
    summary["overhead_p50_ms"] = round(summary["gateway"]["p50_ms"] - summary["direct"]["p50_ms"], 3)
    return summary


# ---- 3. the study (its measuring tools are in stack_measures.py) ----

def study(store_url: str, token: str, work: Path, stages: dict[str, list], exit_stack: ExitStack) -> dict:
    results: dict = {pattern: {} for pattern in stages}
    locust_dir = RESULTS / "locust"
    locust_dir.mkdir(parents=True, exist_ok=True)

    # The monolith: both handlers in one long-running process (the train function's interpreter has both's
    # libraries), always on.
    train_dir = funcenv.FUNCTIONS_DIR / "train"
    port = free_port()
    env = funcenv.function_environment(train_dir, port=port, extra=train_env(store_url, token))
    monolith = processes.spawn([str(funcenv.function_python(train_dir)), str(ROOT / "bench" / "monolith.py")],
                               work / "monolith.log", env=env)
    exit_stack.callback(processes.stop, monolith)
    processes.wait_healthy(f"http://127.0.0.1:{port}/_/health", monolith, "the monolith", work / "monolith.log", 120)
    for pattern, shape in stages.items():
        started = time.monotonic()
        with MemorySampler(lambda: [monolith.pid]) as memory:
            stats = locust(f"http://127.0.0.1:{port}", "/predict/", "/train/", shape,
                           locust_dir / f"monolith-{pattern}", work / "locust.log")
        results[pattern]["monolith"] = {**stats, "cold_starts": 0, "seconds": round(time.monotonic() - started, 1),
                                        "memory_mib_s": round(memory.memory_mib_s),
                                        "reserved_mib_s": round(memory.reserved_mib_s), "processes": 1}
    processes.stop(monolith)

    # Functions that scale to zero after 5 s without traffic, behind the gateway, with the warm pool.
    gateway = gateway_process.start(free_port(), work / "gw-study", stack_files=[funcenv.STACK_FILE], pool_size=1,
                                    autoscale_interval=0.5)
    exit_stack.callback(gateway.stop)
    zero = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "5s",
            "com.openfaas.scale.max": "4", "com.openfaas.scale.target": "30"}
    deploy(gateway, "study-train", TRAIN_IMAGE, train_env(store_url, token), {**zero, "com.openfaas.scale.max": "1"})
    deploy(gateway, "study-predict", PREDICT_IMAGE, predict_env(store_url, token), zero)
    for pattern, shape in stages.items():
        for name in ("study-train", "study-predict"):  # every run starts from zero, as after a quiet night
            wait_for(lambda n=name: describe(gateway, n)["replicas"] == 0, 60, f"{name} to scale to zero")
        wait_for(lambda: _pool_ready(gateway, "predict", False) and _pool_ready(gateway, "train", False), 120,
             "the warm pools")
        cold_before = len(gateway_events(gateway, "scaling from zero"))
        replicas_before = len(gateway_events(gateway, "replica ready"))
        started = time.monotonic()
        function_pids = lambda: [p for p in processes.descendants(gateway.process.pid) if not is_zygote(p)]
        pool_pids = lambda: [p for p in processes.descendants(gateway.process.pid) if is_zygote(p)]
        with MemorySampler(function_pids) as memory, MemorySampler(pool_pids) as pool:
            stats = locust(gateway.url, "/function/study-predict", "/function/study-train", shape,
                           locust_dir / f"functions-{pattern}", work / "locust.log")
        starts = gateway_events(gateway, "replica ready")[replicas_before:]
        results[pattern]["functions"] = {
            **stats, "cold_starts": len(gateway_events(gateway, "scaling from zero")) - cold_before,
            "replica_starts": len(starts), "replica_starts_from_pool": sum(e["warm"] for e in starts),
            "seconds": round(time.monotonic() - started, 1),
            "memory_mib_s": round(memory.memory_mib_s), "reserved_mib_s": round(memory.reserved_mib_s),
            "pool_memory_mib_s": round(pool.memory_mib_s), "processes": memory.processes,
        }
    gateway.stop()
    return results


# ---- the plot ----

def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    cold = result["cold_start"]
    ax = axes[0][0]
    ax.bar(["without pool", "with pool"], [cold["without_pool"]["median_ms"], cold["with_pool"]["median_ms"]],
           color=["#999999", "#2a7ab0"])
    ax.axhline(TARGETS["cold_start_without_pool_ms"], color="#999999", linestyle="--", label="target without pool")
    ax.axhline(TARGETS["cold_start_with_pool_ms"], color="#2a7ab0", linestyle="--", label="target with pool")
    ax.set_title("Cold start: scaled to zero -> first answer (median ms)")
    ax.legend()

    warm = result["warm_latency"]
    ax = axes[0][1]
    labels = ["p50", "p99"]
    direct = [warm["direct"]["p50_ms"], warm["direct"]["p99_ms"]]
    through = [warm["gateway"]["p50_ms"], warm["gateway"]["p99_ms"]]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], direct, 0.4, label="direct", color="#999999")
    ax.bar([x + 0.2 for x in xs], through, 0.4, label="through the gateway", color="#2a7ab0")
    ax.set_xticks(list(xs), labels)
    ax.set_title(f"Warm predict latency (ms); gateway overhead p50 {warm['overhead_p50_ms']} ms")
    ax.legend()

    study_result = result["study"]
    names = [f"{variant}\n{pattern}" for pattern in study_result for variant in ("monolith", "functions")]
    entries = [study_result[pattern][variant] for pattern in study_result for variant in ("monolith", "functions")]
    colours = ["#999999", "#2a7ab0"] * len(study_result)
    ax = axes[1][0]
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [e["predict"]["p50_ms"] for e in entries], 0.4, label="predict p50",
           color=colours, alpha=0.6)
    ax.bar([x + 0.2 for x in xs], [e["predict"]["p99_ms"] for e in entries], 0.4, label="predict p99",
           color=colours)
    ax.set_yscale("log")
    ax.set_xticks(list(xs), names)
    ax.set_title("Study: predict latency p50 (light) / p99 (dark), ms, log scale")

    ax = axes[1][1]
    replicas = [e["reserved_mib_s"] for e in entries]
    pools = [e.get("pool_memory_mib_s", 0) for e in entries]
    ax.bar(names, replicas, color=colours, label="replicas / monolith")
    ax.bar(names, pools, bottom=replicas, color="#a6cbe3", hatch="//", label="warm pool")
    for x, e in enumerate(entries):
        ax.text(x, replicas[x] + pools[x], f"{e['cold_starts']} cold starts", ha="center", va="bottom", fontsize=8)
    ax.set_title("Study: reserved memory-seconds (MiB·s)")
    ax.legend()
    figure.suptitle(f"mlfunctions local runtime — {result['machine']['cpus']} CPUs, load {result['machine']['load']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter load runs (a smoke run)")
    options = parser.parse_args()
    samples = 4 if options.quick else 8
    blocks, per_block = (3, 100) if options.quick else (10, 200)
    stages = {"steady": [[12, 10]], "bursty": [[4, 20], [9, 0], [4, 20], [9, 0], [4, 20]]} if options.quick else {
        "steady": [[20, 10]], "bursty": [[4, 20], [9, 0], [4, 20], [9, 0], [4, 20]]}

    load_before = os.getloadavg()[0]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp, ExitStack() as cleanup:
        work = Path(tmp)
        store_url, store = start_iris_server(work / "store", ADMIN_TOKEN)
        cleanup.callback(stop_iris_server, store)
        token = ModelStoreClient(store_url, ADMIN_TOKEN).create_token(models=["*"], rights=["read", "write"]).token

        cold: dict = {}
        for mode, pool_size in (("with_pool", 1), ("without_pool", 0)):
            gateway = gateway_process.start(free_port(), work / f"gw-{mode}", stack_files=[funcenv.STACK_FILE],
                                            pool_size=pool_size, autoscale_interval=0.5)
            cleanup.callback(gateway.stop)
            if mode == "with_pool":  # a model to serve: train once, through a function
                deploy(gateway, "trainer", TRAIN_IMAGE, train_env(store_url, token), {})
                trained = requests.post(f"{gateway.url}/function/trainer", json={}, timeout=600)
                trained.raise_for_status()
            deploy(gateway, "cold-predict", PREDICT_IMAGE, predict_env(store_url, token),
                   {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "10m"})
            wait_for(lambda g=gateway: describe(g, "cold-predict")["availableReplicas"] == 1, 300, "the first replica")
            # The pool learns the function's imports from a replica it served: a warm-up round first.
            cold_starts(gateway, 1, pooled=pool_size > 0, learned=False)
            cold[mode] = cold_starts(gateway, samples, pooled=pool_size > 0)
            if mode == "with_pool":
                warm = warm_latency(gateway, "cold-predict", blocks, per_block)
            gateway.stop()

        study_result = study(store_url, token, work, stages, cleanup)

    result = {
        "benchmark": "stack",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"},
        "setup": "standalone gateway+runtime (Kubernetes is not on the request path), real predict/train "
                 "functions in their own virtualenvs, a real iris-server; medians",
        "targets": TARGETS,
        "cold_start": {**cold, "met": {
            "without_pool": cold["without_pool"]["median_ms"] <= TARGETS["cold_start_without_pool_ms"],
            "with_pool": cold["with_pool"]["median_ms"] <= TARGETS["cold_start_with_pool_ms"]}},
        "warm_latency": {**warm, "met": warm["overhead_p50_ms"] <= TARGETS["gateway_overhead_p50_ms"]},
        "study": study_result,
        "seconds": round(time.monotonic() - began, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not options.quick:
        (RESULTS / "stack.json").write_text(json.dumps(result, indent=2) + "\n")
        plot(result, RESULTS / "stack.png")
    print(json.dumps(result, indent=2))
    steady, bursty = study_result["steady"], study_result["bursty"]
    print(f"stack: cold start {cold['without_pool']['median_ms']} ms without pool, {cold['with_pool']['median_ms']} ms "
          f"with pool; gateway overhead p50 {warm['overhead_p50_ms']} ms; bursty predict p99 monolith "
          f"{bursty['monolith']['predict']['p99_ms']} ms vs functions {bursty['functions']['predict']['p99_ms']} ms, "
          f"reserved MiB·s {bursty['monolith']['reserved_mib_s']} vs "
          f"{bursty['functions']['reserved_mib_s'] + bursty['functions']['pool_memory_mib_s']} "
          f"(steady: {steady['monolith']['reserved_mib_s']} vs "
          f"{steady['functions']['reserved_mib_s'] + steady['functions']['pool_memory_mib_s']})")


if __name__ == "__main__":
    main()
