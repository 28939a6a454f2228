"""A predict function's cold start on a real node, through the local gateway on its pods backend, without and
with the pod pool, split into parts (node_bench/gateway_cold_start.py), medians over --runs; in the same run, the
anchor of a warm call through the gateway. Printed beside the issue's targets (<= 1 s without a pool, <= 100 ms
with a pool pod) and the published anchors (OpenFaaS on Kubernetes 1-2 s, Knative 2-4 s, Fission's pool ~100 ms,
the seed study's ~400 ms container start).

    .venv/bin/python bench/bench_pod_cold_start.py [--runs 5]   (root: it starts a node; hack/harness/README.md)

Prints the JSON and a one-line summary; writes results/pod_cold_start.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from kubernetes import client

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests" / "node"))  # the node suite's user-level helpers: one definition

from chart_release import Kubectl, Release, openfaas_identity, predict_function, train_function, user_values
from local_openfaas.gateway import process as gateway_process
from local_openfaas.pods import pool_objects
from mlfunctions_harness import images, processes
from mlfunctions_harness.node import LocalNode
from mlfunctions_operator.naming import function_name
from node_bench import gateway_cold_start

RESULTS = BENCH / "results" / "pod_cold_start.json"
USERS = "bench"
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
IDLE = "2s"
ANCHORS = {"openfaas_kubernetes_seconds": [1.0, 2.0], "knative_seconds": [2.0, 4.0], "fission_pool_seconds": 0.1,
           "seed_container_start_seconds": 0.4}
TARGETS = {"without_pool_seconds": 1.0, "with_pool_seconds": 0.1}


def _gateway(release: Release, kubeconfig: Path, port: int, state: Path, pool: int):
    return gateway_process.start(port, state, kubeconfig=kubeconfig, autoscale_interval=0.25, ready_timeout=120,
                                 extra_args=["--backend", "pods", "--namespace", release.function_namespace,
                                             "--no-cron", "--pod-pool-size", str(pool)])


def _series(runs: list[dict]) -> dict:
    parts = [k for k in runs[0]]
    return {"runs": runs, "median_seconds": {k: round(statistics.median(r[k] for r in runs), 4) for k in parts}}


def run(runs: int) -> dict:
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
                                 "python": platform.python_version()}, "anchors": ANCHORS, "targets": TARGETS}
    with tempfile.TemporaryDirectory() as scratch, LocalNode() as node:
        workdir = Path(scratch)
        built = images.load_into_containerd(node.containerd.socket)
        kubectl = Kubectl(node.control_plane.kubectl, node.control_plane.kubeconfig)
        with node.control_plane.api_client() as api:
            core = client.CoreV1Api(api)
            release = Release(node.control_plane.kubeconfig, workdir)
            kubeconfig = openfaas_identity(node.control_plane, api, release, USERS, workdir)
            port = processes.free_port()
            gateway = _gateway(release, kubeconfig, port, workdir / "gateway", pool=0)
            try:
                release.install(user_values(built, console={"enabled": False}))
                function = _serving(kubectl, core, release, gateway)
                namespace = release.function_namespace

                def call() -> requests.Response:
                    return requests.post(f"{gateway.url}/function/{function}.{namespace}", json=ROW, timeout=120)

                def zero() -> None:
                    kubectl.wait(f"deployment/{function}", "jsonpath={.spec.replicas}=0", namespace)
                    for pod in core.list_namespaced_pod(namespace, label_selector=f"faas_function={function}").items:
                        kubectl.wait(f"pod/{pod.metadata.name}", "delete", namespace)

                def correct(answer: dict) -> bool:
                    return answer.get("predictions") == ["setosa"]

                results["warm_call_seconds"] = _warm(call)
                results["without_pool"] = _series([gateway_cold_start.measure(
                    core, namespace, function, zero, call, correct, pool=False) for _ in range(runs)])
                gateway.stop()
                gateway = _gateway(release, kubeconfig, port, workdir / "gateway", pool=1)
                pool = pool_objects.pool_name(built["predict"].ref)

                def zero_and_pool_ready() -> None:
                    zero()
                    kubectl.wait(f"deployment/{pool}", "jsonpath={.status.readyReplicas}=1", namespace)

                results["with_pool"] = _series([gateway_cold_start.measure(
                    core, namespace, function, zero_and_pool_ready, call, correct, pool=True) for _ in range(runs)])
                results["pool_pod_memory_request"] = "none (BestEffort): counted in the study as one replica's RSS"
            finally:
                gateway.stop()
    without = results["without_pool"]["median_seconds"]["total"]
    with_pool = results["with_pool"]["median_seconds"]["total"]
    results["meets_targets"] = {"without_pool": without <= TARGETS["without_pool_seconds"],
                                "with_pool": with_pool <= TARGETS["with_pool_seconds"]}
    return results


def _serving(kubectl: Kubectl, core: client.CoreV1Api, release: Release, gateway) -> str:
    """Model trained (through the gateway) and the predict function deployed to scale to zero: its name."""
    kubectl.apply(train_function("iris-train", USERS, "iris"))
    kubectl.wait("mlfunction/iris-train", "condition=Ready", USERS)
    token = base64.b64decode(core.read_namespaced_secret("iris-train-invoke", USERS).data["token"]).decode()
    trainer = function_name(USERS, "iris-train")
    answer = requests.post(f"{gateway.url}/function/{trainer}.{release.function_namespace}",
                           headers={"Authorization": f"Bearer {token}"}, timeout=300)
    assert answer.status_code == 200, answer.text
    kubectl.apply(predict_function("iris-predict", USERS, "iris",
                                   scaling={"minReplicas": 0, "maxReplicas": 1, "scaleToZeroAfter": IDLE}))
    kubectl.wait("mlfunction/iris-predict", "condition=Ready", USERS, timeout=120)
    return function_name(USERS, "iris-predict")


def _warm(call) -> float:
    """Median of 20 calls in a row to a warm replica (the anchor: what a cold start adds to)."""
    call()
    times = []
    for _ in range(20):
        began = time.perf_counter()
        assert call().status_code == 200
        times.append(time.perf_counter() - began)
    return round(statistics.median(times), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    results = run(parser.parse_args().runs)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    without, pooled = results["without_pool"]["median_seconds"], results["with_pool"]["median_seconds"]
    print(f"pod cold start through the gateway (median): without pool {without['total']:.3f} s (target <= 1 s; "
          f"OpenFaaS 1-2 s, Knative 2-4 s), with a pool pod {pooled['total']:.3f} s (target <= 0.1 s; Fission "
          f"~0.1 s); warm call {results['warm_call_seconds'] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
