"""The chart on a real node, timed in one run: image builds (cached; the cold build as hack/images.sh last logged
it), loading the images into the node's containerd, `helm install` -> operator Ready, ModelStore created -> Ready,
and a predict function's in-cluster cold start (Deployment scaled 0 -> 1 -> first correct answer) split into its
parts (node_bench/cold_start.py), medians over --runs. Anchors printed beside it: OpenFaaS on Kubernetes 1-2 s for
a pre-pulled image, a container spin-up of about 400 ms; target: cold start <= 1 s at the median. The cold start
is measured with faas-netes' readiness probe (the OpenFaaS chart's: after 2 s, every 2 s) and again, as an extra
row, with one that starts at once and runs every second, to show what the probe's timing costs.

    .venv/bin/python bench/bench_node.py [--runs 5]      (root: it starts a node; see hack/harness/README.md)

One node per network namespace: beside another node, run it in a namespace of its own (with a default route to
a veth pair inside it, so that ClusterIPs are routed to kube-proxy's rules) and MLFUNCTIONS_NODE_ROOT elsewhere.

Prints the JSON and a one-line summary; writes results/node.json.
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

from kubernetes import client

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests" / "node"))  # the node suite's user-level helpers: one definition

from chart_release import FUNCTION_CRD, Kubectl, Release, predict_function, train_function, user_values
from cluster_traffic import ServiceURL
from local_openfaas.faas_netes import background, identity
from local_openfaas.faas_netes.objects import DeploymentConfig, ProbeTiming
from mlfunctions_harness import crds, images
from mlfunctions_harness.node import LocalNode
from node_bench import cold_start

RESULTS = BENCH / "results" / "node.json"
USERS = "bench"
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
ANCHORS = {"openfaas_kubernetes_cold_start_seconds": [1.0, 2.0], "container_spin_up_seconds": 0.4,
           "target_median_seconds": 1.0}
DEFAULT_PROBES = DeploymentConfig(image_pull_policy="Never")  # faas-netes' readiness probe: 2 s delay, every 2 s
# Both probes start after the liveness probe's initial delay (faas-netes' MakeProbes), so that one is set to 0 too.
FAST_PROBES = DeploymentConfig(image_pull_policy="Never", liveness=ProbeTiming(initial_delay_seconds=0),
                               readiness=ProbeTiming(initial_delay_seconds=0, timeout_seconds=1, period_seconds=1))


def _timed(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return round(time.perf_counter() - began, 3), result


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 4)


# Not measured here (a cold build takes six minutes of both cores): the images work's measurement, hack/README.md.
COLD_BUILD_REPORTED = {"seconds": 354, "source": "hack/README.md (first build, 2-core machine, shared)"}


def image_builds() -> dict:
    cached_seconds, built = _timed(images.build)
    return {"cached_seconds": cached_seconds, "cold_reported": COLD_BUILD_REPORTED,
            "tar_bytes": {name: image.tar.stat().st_size for name, image in built.items()}}


def model_store_ready(kubectl: Kubectl, namespace: str, name: str) -> float:
    body = {"apiVersion": "mlfunctions.dev/v1alpha1", "kind": "ModelStore", "metadata": {"name": name,
            "namespace": namespace}, "spec": {"replicas": 1, "storage": {"size": "64Mi"}}}
    seconds, _ = _timed(lambda: (kubectl.apply(body), kubectl.wait(f"modelstore/{name}", "condition=Ready",
                                                                    namespace, timeout=180)))
    return seconds


def run(runs: int) -> dict:
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
                                 "python": platform.python_version()}, "anchors": ANCHORS}
    results["image_builds"] = image_builds()
    with tempfile.TemporaryDirectory() as scratch, LocalNode() as node:
        results["node_start_seconds"] = round(node.started_seconds, 3)
        results["image_load"] = {}
        results["image_load"]["first_seconds"], built = _timed(
            lambda: images.load_into_containerd(node.containerd.socket))
        results["image_load"]["cached_seconds"], _ = _timed(
            lambda: images.load_into_containerd(node.containerd.socket))
        kubectl = Kubectl(node.control_plane.kubectl, node.control_plane.kubeconfig)
        with node.control_plane.api_client() as api:
            core = client.CoreV1Api(api)
            release = Release(node.control_plane.kubeconfig, Path(scratch))
            crds.install(api, [FUNCTION_CRD])
            for namespace in (release.function_namespace, USERS):
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
            account = identity.install(api, release.function_namespace)
            faas_kubeconfig = node.control_plane.service_account_kubeconfig(
                release.function_namespace, account, Path(scratch) / "faas-netes.kubeconfig")
            faas_netes = background.start(faas_kubeconfig, release.function_namespace, DEFAULT_PROBES)
            try:
                results.update(_release_numbers(release, kubectl, built, runs))
                function, through_service = _predict_serving(core, kubectl, release)
                probe = _readiness_probe(client.AppsV1Api(api), release.function_namespace, function)
                results["cold_start"] = {"readiness_probe": _probe_timing(probe), **_cold_starts(
                    node, core, release, faas_netes, function, through_service, runs)}
            finally:
                faas_netes.stop()
            # An extra row, not the default: the same with a faster readiness probe (the OpenFaaS chart's
            # faasnetes.readinessProbe), to show how much of the cold start the probe's timing is.
            faas_netes = background.start(faas_kubeconfig, release.function_namespace, FAST_PROBES)
            try:
                probe = _wait_probe_rolled_out(client.AppsV1Api(api), kubectl, release.function_namespace, function)
                results["cold_start_fast_readiness_probe"] = {
                    "readiness_probe": _probe_timing(probe),
                    **_cold_starts(node, core, release, faas_netes, function, through_service, runs)}
            finally:
                faas_netes.stop()
    return results


def _release_numbers(release: Release, kubectl: Kubectl, built: dict, runs: int) -> dict:
    install_seconds, _ = _timed(lambda: release.install(user_values(built)))
    rollout_seconds, _ = _timed(lambda: kubectl.rollout(release.operator, release.namespace))
    # Serving, not only running: the operator's first status write on the chart's ModelStore.
    serving_seconds, _ = _timed(lambda: kubectl.wait("modelstore/default", "jsonpath={.status.observedGeneration}=1",
                                                     release.namespace))
    default_ready, _ = _timed(lambda: kubectl.wait("modelstore/default", "condition=Ready", release.namespace))
    stores = [model_store_ready(kubectl, release.namespace, f"bench-{i}") for i in range(runs)]
    return {"helm_install": {"helm_install_wait_seconds": install_seconds,
                             "operator_ready_seconds": round(install_seconds + rollout_seconds, 3),
                             "operator_serving_seconds": round(install_seconds + rollout_seconds + serving_seconds, 3),
                             "default_store_ready_after_install_seconds": round(
                                 install_seconds + rollout_seconds + serving_seconds + default_ready, 3)},
            "model_store_created_to_ready": {"runs": stores, "median_seconds": round(statistics.median(stores), 3)}}


def _predict_serving(core: client.CoreV1Api, kubectl: Kubectl, release: Release):
    """Train the model, then the predict function Ready: (its Function's name, its Service's URL for a pod)."""
    kubectl.apply(train_function("iris-train", USERS, "iris"), predict_function("iris-predict", USERS, "iris"))
    kubectl.wait("mlfunction/iris-train", "condition=Ready", USERS)
    trainer = _function_of(kubectl, "iris-train")
    train_pod = core.list_namespaced_pod(release.function_namespace, label_selector=f"faas_function={trainer}")
    cluster_ip = core.read_namespaced_service(trainer, release.function_namespace).spec.cluster_ip
    token = base64.b64decode(core.read_namespaced_secret("iris-train-invoke", USERS).data["token"]).decode()
    answer = ServiceURL(cluster_ip, pods={train_pod.items[0].status.pod_ip}).post(
        "/", headers={"Authorization": f"Bearer {token}"})  # the MLFunction's own credential (docs/api.md)
    assert answer.status_code == 200, answer.text
    kubectl.wait("mlfunction/iris-predict", "condition=Ready", USERS, timeout=120)
    function = _function_of(kubectl, "iris-predict")
    service_ip = core.read_namespaced_service(function, release.function_namespace).spec.cluster_ip

    def through_service(pod_ip: str) -> str:
        return ServiceURL(service_ip, pods={pod_ip}).base + "/"

    return function, through_service


def _wait_probe_rolled_out(apps: client.AppsV1Api, kubectl: Kubectl, namespace: str, function: str,
                           timeout: float = 60.0) -> client.V1Probe:
    """Until the reconciler has applied FAST_PROBES to the Deployment and its new pod has rolled out; the probe."""
    deadline = time.monotonic() + timeout
    while _readiness_probe(apps, namespace, function).period_seconds != FAST_PROBES.readiness.period_seconds:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the faster readiness probe did not reach {function} in {timeout:g}s")
        time.sleep(0.1)
    kubectl.rollout(function, namespace)
    return _readiness_probe(apps, namespace, function)


def _readiness_probe(apps: client.AppsV1Api, namespace: str, function: str) -> client.V1Probe:
    return apps.read_namespaced_deployment(function, namespace).spec.template.spec.containers[0].readiness_probe


def _probe_timing(probe: client.V1Probe) -> dict:
    return {"initialDelaySeconds": probe.initial_delay_seconds, "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds}


def _cold_starts(node: LocalNode, core: client.CoreV1Api, release: Release, faas_netes, function: str,
                 through_service, runs: int) -> dict:
    measured = [cold_start.measure(core, release.function_namespace, function,
                                   lambda n: faas_netes.scale(function, n), node.container_pid, through_service,
                                   ROW, lambda a: a.get("predictions") == ["setosa"]) for _ in range(runs)]
    parts = [k for k in measured[0] if k not in ("total", "first_answer_from_pod", "trigger")]
    medians = {k: _median(measured, k) for k in parts}
    total = _median(measured, "total")
    return {"runs": measured, "triggers": sorted({r["trigger"] for r in measured}), "median_parts_seconds": medians,
            "median_share": {k: round(v / total, 3) for k, v in medians.items()},
            "median_total_seconds": total,
            "median_first_answer_from_pod_seconds": _median(measured, "first_answer_from_pod"),
            "meets_target": total <= ANCHORS["target_median_seconds"]}


def _function_of(kubectl: Kubectl, mlfunction: str) -> str:
    """The OpenFaaS Function's name, as the operator reports it (its naming rule is the operator's own)."""
    return kubectl.json("get", f"mlfunction/{mlfunction}", "-n", USERS)["status"]["function"]["name"]


def summary(results: dict) -> str:
    cold = results["cold_start"]
    biggest = max(cold["median_parts_seconds"], key=cold["median_parts_seconds"].get)
    return (f"node: images cached {results['image_builds']['cached_seconds']}s, loaded into containerd "
            f"{results['image_load']['first_seconds']}s; helm install -> operator Ready "
            f"{results['helm_install']['operator_ready_seconds']}s; ModelStore -> Ready "
            f"{results['model_store_created_to_ready']['median_seconds']}s; predict 0 -> 1 -> first answer "
            f"{cold['median_total_seconds']}s (straight to the pod {cold['median_first_answer_from_pod_seconds']}s; "
            f"largest part {biggest} {cold['median_parts_seconds'][biggest]}s) vs OpenFaaS 1-2 s, container "
            f"~0.4 s, target <= 1 s: {'met' if cold['meets_target'] else 'not met'}; with a readiness probe every "
            f"1 s from the start {results['cold_start_fast_readiness_probe']['median_total_seconds']}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = run(args.runs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(summary(results))


if __name__ == "__main__":
    main()
