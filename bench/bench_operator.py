"""Benchmark of the operator on the local control plane (real etcd + kube-apiserver), the operator running as its
own ServiceAccount under the chart's RBAC, a real iris-server as the model store (every MLFunction gets a token).

Measures:
  - create -> all children present and status posted, one MLFunction at a time: p50/p99 over 100;
  - 1,000 MLFunctions created at once: time until every one has its status posted;
  - the operator's peak resident memory (VmHWM) with those 1,000 (and 100) MLFunctions.
Baseline, same run: the same writes an MLFunction costs (ServiceAccount, Role, RoleBinding, Secret, Function,
status patch) done directly by an admin client, one after another, no operator in between.

The API server spends a fixed ~100 ms on the privilege-escalation check of every Role and RoleBinding that a
non-admin creates (measured: ~5 ms as admin, ~100 ms as the operator's ServiceAccount, ~5 ms once that account may
`escalate` and `bind` roles), and a function's RoleBinding must wait for its Role. So the latency is measured twice:
under the chart's least-privilege RBAC, and again after granting the operator `escalate` and `bind` on roles in the
function namespace, which shows what the operator itself costs.

    .venv/bin/python bench/bench_operator.py          # about two minutes; JSON to bench/results/operator.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3
import yaml
from mlfunctions_operator.naming import FunctionNames
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from kubernetes import client, watch
from mlfunctions_harness import controlplane, crds
from mlfunctions_harness.operator_process import OperatorProcess, install_operator_identity

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "operator.json"
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
OPERATOR_NS, FUNCTION_NS, STORE = "mlfunctions-system", "openfaas-fn", "bench"
ADMIN_TOKEN = "bench-operator-admin-token-0123456789"
TARGETS = {"latency_p50_ms": 100, "reconcile_1000_s": 60, "peak_rss_mb": 150}


def grant_escalate_and_bind(cluster, identity) -> None:
    """Let the operator create Roles/RoleBindings in the function namespace without the escalation check."""
    documents = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "bench-escalate", "namespace": FUNCTION_NS},
         "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                    "verbs": ["escalate", "bind"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "bench-escalate", "namespace": FUNCTION_NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-escalate"},
         "subjects": [{"kind": "ServiceAccount", "name": identity.service_account,
                       "namespace": identity.namespace}]},
    ]
    subprocess.run([cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", "-"],
                   input=yaml.safe_dump_all(documents), check=True, capture_output=True, text=True)


def sequential_latencies(api: client.ApiClient, namespace: str, count: int, operator) -> list[float]:
    custom = client.CustomObjectsApi(api)
    watcher = StatusWatcher(api, namespace)
    latencies = []
    for i in range(count):
        name = f"seq-{i}"
        began = time.monotonic()
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", mlfunction(name))
        if not watcher.wait_for({name}, timeout=30):
            raise RuntimeError(f"{name}: no status after 30s\n{operator.log_tail()}")
        latencies.append(watcher.posted[name] - began)
    watcher.stop()
    assert all(children_present(api, namespace, f"seq-{i}") for i in range(0, count, 10))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class StatusWatcher:
    """Watches MLFunctions in one namespace; records when each first has a status for its generation."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.api, self.namespace = api, namespace
        self.posted: dict[str, float] = {}
        self.changed = threading.Condition()
        self._watch = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            try:
                self._follow()
            except urllib3.exceptions.ProtocolError:
                # The API server ended the stream (or is shutting down at the end of a phase). A new watch replays
                # current objects as ADDED; only first sightings are recorded, so nothing counts twice.
                continue

    def _follow(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        for event in self._watch.stream(custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                        "mlfunctions"):
            obj = event["object"]
            status = obj.get("status") or {}
            name = obj["metadata"]["name"]
            if status.get("observedGeneration") == obj["metadata"]["generation"] and status.get("function") \
                    and name not in self.posted:
                with self.changed:
                    self.posted[name] = time.monotonic()
                    self.changed.notify_all()

    def wait_for(self, names: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not names <= self.posted.keys():
                if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                    return names <= self.posted.keys()
        return True

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def mlfunction(name: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": name},
            "spec": {"task": "predict", "model": {"name": "iris"}, "modelStore": STORE}}


def children_present(api: client.ApiClient, namespace: str, name: str) -> bool:
    names = FunctionNames.for_mlfunction(namespace, name)
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    custom = client.CustomObjectsApi(api)
    try:
        custom.get_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NS, "functions", names.function)
        core.read_namespaced_secret(names.credential_secret, FUNCTION_NS)
        core.read_namespaced_service_account(names.service_account, FUNCTION_NS)
        rbac.read_namespaced_role(names.role, FUNCTION_NS)
        rbac.read_namespaced_role_binding(names.role_binding, FUNCTION_NS)
    except client.ApiException:
        return False
    return True


def baseline_writes(api: client.ApiClient, namespace: str, count: int) -> list[float]:
    """The same six writes per object, straight to the API server (server-side apply), one after another."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    labels = {"bench": "baseline"}
    apply = {"field_manager": "bench", "force": True, "_content_type": "application/apply-patch+yaml"}
    durations = []
    for i in range(count):
        name = f"baseline-{i}"
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", mlfunction(name)
                                               | {"spec": {"task": "predict", "model": {"name": "x"},
                                                           "modelStore": "absent-on-purpose"}})
        began = time.monotonic()
        core.patch_namespaced_service_account(name, FUNCTION_NS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                              "metadata": {"name": name, "labels": labels}}, **apply)
        rbac.patch_namespaced_role(name, FUNCTION_NS, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                   "metadata": {"name": name, "labels": labels}, "rules": []}, **apply)
        rbac.patch_namespaced_role_binding(name, FUNCTION_NS, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": FUNCTION_NS}]}, **apply)
        core.patch_namespaced_secret(name, FUNCTION_NS, {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": name, "labels": labels}, "stringData": {"model-store-token": "x"}}, **apply)
        custom.patch_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NS, "functions", name, {
            "apiVersion": "openfaas.com/v1", "kind": "Function", "metadata": {"name": name, "labels": labels},
            "spec": {"name": name, "image": "x"}}, **apply)
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "mlfunctions", name,
                                                     {"status": {"observedGeneration": 1}},
                                                     _content_type="application/merge-patch+json")
        durations.append(time.monotonic() - began)
    return durations


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def run(sequential: int, burst: int) -> dict:
    with controlplane.from_environment() as cluster, tempfile.TemporaryDirectory() as tmp:
        api = cluster.api_client()
        crds.install(api, [REPO / "crds", REPO / "hack" / "crds" / "openfaas.com_functions.yaml"])
        identity = install_operator_identity(cluster, OPERATOR_NS, FUNCTION_NS)
        url, iris = start_iris_server(Path(tmp) / "store", admin_token=ADMIN_TOKEN)
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        core.create_namespaced_secret(OPERATOR_NS, {"metadata": {"name": "bench-admin"},
                                                    "stringData": {"admin-token": ADMIN_TOKEN}})
        custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NS, "modelstores", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": STORE},
            "spec": {"external": {"url": url, "adminTokenSecretRef": {"name": "bench-admin"}}}})
        for ns in ("bench-seq", "bench-burst", "bench-baseline", "bench-seq-escalate"):
            core.create_namespace({"metadata": {"name": ns}})
        operator = OperatorProcess(cluster, identity, log_path=Path(tmp) / "operator.log",
                                   env={"MLFUNCTIONS_RESYNC_SECONDS": "600", "MLFUNCTIONS_LOG_LEVEL": "WARNING",
                                        "MLFUNCTIONS_CREATE_DEFAULT_MODEL_STORE": "false"})
        try:
            operator.start()
            baseline = baseline_writes(api, "bench-baseline", sequential)

            latencies = sequential_latencies(api, "bench-seq", sequential, operator)
            rss_after_sequential = peak_rss_mb(operator.pid)

            watcher = StatusWatcher(api, "bench-burst")
            names = [f"burst-{i}" for i in range(burst)]
            servers = {name: pid for name, pid in cluster.processes().items() if name in ("kube-apiserver", "etcd")}
            cpu_before = {"operator": cpu_seconds(operator.pid), "iris-server": cpu_seconds(iris.pid),
                          **{name: cpu_seconds(pid) for name, pid in servers.items()}}
            began = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda n: custom.create_namespaced_custom_object(GROUP, VERSION, "bench-burst",
                                                                               "mlfunctions", mlfunction(n)), names))
            created = time.monotonic() - began
            if not watcher.wait_for(set(names), timeout=300):
                missing = len(set(names) - watcher.posted.keys())
                raise RuntimeError(f"{missing} of {burst} without status after 300s\n{operator.log_tail()}")
            reconciled = max(watcher.posted.values()) - began
            cpu = {"operator": cpu_seconds(operator.pid) - cpu_before["operator"],
                   "iris-server": cpu_seconds(iris.pid) - cpu_before["iris-server"],
                   **{name: cpu_seconds(pid) - cpu_before[name] for name, pid in servers.items()}}
            watcher.stop()
            assert all(children_present(api, "bench-burst", n) for n in names[::50])
            rss = peak_rss_mb(operator.pid)
            grant_escalate_and_bind(cluster, identity)
            time.sleep(1)  # RBAC caches catch up
            escalate_latencies = sequential_latencies(api, "bench-seq-escalate", sequential, operator)
        finally:
            operator.stop()
            stop_iris_server(iris)
        version = cluster.version
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    base_p50 = percentile(baseline, 0.5) * 1000
    return {
        "benchmark": "operator",
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                    "kubernetes": version},
        "create_to_status": {"count": sequential, "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
                             "median_ms": round(statistics.median(latencies) * 1000, 1)},
        "create_to_status_with_escalate_and_bind": {
            "count": sequential, "p50_ms": round(percentile(escalate_latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(escalate_latencies, 0.99) * 1000, 1)},
        "baseline_direct_writes": {"count": sequential, "p50_ms": round(base_p50, 1),
                                   "p99_ms": round(percentile(baseline, 0.99) * 1000, 1)},
        "operator_over_baseline_p50": round(p50 / base_p50, 2),
        "burst": {"count": burst, "create_seconds": round(created, 2), "all_reconciled_seconds": round(reconciled, 2),
                  "per_second": round(burst / reconciled, 1),
                  "cpu_ms_per_mlfunction": {name: round(seconds * 1000 / burst, 1) for name, seconds in cpu.items()},
                  "machine_load_average": round(__import__("os").getloadavg()[0], 1)},
        "peak_rss_mb": {"after_sequential": round(rss_after_sequential, 1), "after_burst": round(rss, 1)},
        "targets": TARGETS,
        "targets_met": {"latency_p50_ms": p50 <= TARGETS["latency_p50_ms"],
                        "reconcile_1000_s": reconciled <= TARGETS["reconcile_1000_s"],
                        "peak_rss_mb": rss <= TARGETS["peak_rss_mb"]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    result = run(args.sequential, args.burst)
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    c, b = result["create_to_status"], result["burst"]
    e = result["create_to_status_with_escalate_and_bind"]
    print(f"operator: create->status p50 {c['p50_ms']} ms / p99 {c['p99_ms']} ms (with escalate+bind p50 "
          f"{e['p50_ms']} ms; direct writes p50 {result['baseline_direct_writes']['p50_ms']} ms); "
          f"{b['count']} at once reconciled in "
          f"{b['all_reconciled_seconds']} s; peak RSS {result['peak_rss_mb']['after_burst']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
