"""Benchmark of the operator on a local control plane (real etcd + kube-apiserver), the operator running as its
own ServiceAccount under the chart's RBAC, a real iris-server as the model store (every MLFunction gets a token).

Measures, for the operator as it is and, in the same run, for the commit before the lighter operator (issue #17.3,
checked out with `git worktree` under /tmp; the whole phase runs from that tree: its operator, chart RBAC, CRDs,
harness and iris-server):
  - create -> all children present and status posted, one MLFunction at a time: p50/p99 over 100, and the API
    requests the operator made per MLFunction on that path;
  - 1,000 MLFunctions created at once: time until every one has its status posted;
  - the operator's peak resident memory (VmHWM) with those 1,000 (and the 100) MLFunctions;
  - at rest (every MLFunction reconciled, the default 60 s resync): the operator's API requests per minute, by
    verb and resource, against the number of MLFunctions.
Requests are counted from the API server's audit log (a policy that records only the operator's ServiceAccount).
Anchor, same phase: the writes an MLFunction cost before #17.3 (ServiceAccount, Role, RoleBinding, Secret,
Function, status patch) done directly by an admin client, one after another, no operator in between.

The API server spends a fixed ~100 ms on the privilege-escalation check of every Role and RoleBinding that a
non-admin creates, and a function's RoleBinding must wait for its Role; the operator before #17.3 made both for
every MLFunction. So the latency is measured again after granting the operator `escalate` and `bind` on roles in
the function namespace, which shows what that check cost (the lighter operator creates no Role: no difference).

    .venv/bin/python bench/bench_operator.py                       # ~12 minutes; JSON to bench/results/operator.json
    .venv/bin/python bench/bench_operator.py --baseline-commit none # the current tree only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import urllib3
import yaml
from kubernetes import client, watch
from operator_targets import TARGETS, gaps, targets_met

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "operator.json"
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
OPERATOR_NS, FUNCTION_NS, STORE = "mlfunctions-system", "openfaas-fn", "bench"
ADMIN_TOKEN = "bench-operator-admin-token-0123456789"
# The last commit before the lighter operator (#17.3): the baseline phase runs from it.
BASELINE_COMMIT = "9a1a541ee1e3"
RESYNC_SECONDS = 60  # the operator's default: the at-rest phase measures what a real installation does
AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts:{OPERATOR_NS}"]
  - level: None
"""
# Packages a phase imports from its tree (PYTHONPATH wins over the editable installs of the working tree).
PACKAGE_DIRS = ("operator", "iris-server", "iris-server/client", "hack/harness")


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
            status = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", name).get("status")
            raise RuntimeError(f"{name}: no status after 30s (status: {status})\n{operator.log_tail()}")
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
    from mlfunctions_operator.naming import FunctionNames  # the phase's own tree

    names = FunctionNames.for_mlfunction(namespace, name)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:  # what every version of the operator makes (the one before #17.3 also made a Role and a RoleBinding)
        custom.get_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NS, "functions", names.function)
        core.read_namespaced_secret(names.credential_secret, FUNCTION_NS)
        core.read_namespaced_service_account(names.service_account, FUNCTION_NS)
    except client.ApiException:
        return False
    return True


def baseline_writes(api: client.ApiClient, namespace: str, count: int) -> list[float]:
    """The six writes per object of the operator before #17.3, straight to the API server (server-side apply), one
    after another."""
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


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident memory (VmHWM), or with field="VmRSS" its resident memory now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def start_profiler(pid: int) -> subprocess.Popen | None:
    """$BENCH_PROFILE=<file>: py-spy samples the operator during the burst (collapsed stacks, for flame graphs)."""
    if not os.environ.get("BENCH_PROFILE"):
        return None
    return subprocess.Popen([os.environ.get("PY_SPY", "py-spy"), "record", "--pid", str(pid), "--rate", "200",
                             "--format", "raw", "--output", os.environ["BENCH_PROFILE"]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(__import__("signal").SIGINT)  # py-spy writes its output on SIGINT
        profiler.wait(timeout=60)


def run_phase(tree: Path, sequential: int, burst: int, rest_seconds: float) -> dict:
    """One operator (the one in `tree`) through every measurement, on a control plane of its own."""
    from mlfunctions_harness import crds
    from mlfunctions_harness.controlplane import LocalControlPlane
    from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
    from mlfunctions_harness.operator_process import OperatorProcess, install_operator_identity
    from operator_audit import requests_between

    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        with LocalControlPlane(workdir=Path(tmp) / "cp", audit_policy=policy) as cluster:
            api = cluster.api_client()
            crds.install(api, [tree / "crds", tree / "hack" / "crds" / "openfaas.com_functions.yaml"])
            identity = install_operator_identity(cluster, OPERATOR_NS, FUNCTION_NS)
            url, iris = start_iris_server(Path(tmp) / "store", admin_token=ADMIN_TOKEN)
            core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
            core.create_namespaced_secret(OPERATOR_NS, {"metadata": {"name": "bench-admin"},
                                                        "stringData": {"admin-token": ADMIN_TOKEN}})
            custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NS, "modelstores", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": STORE},
                "spec": {"external": {"url": url, "adminTokenSecretRef": {"name": "bench-admin"}}, "namespaces": ["*"]}})
            for ns in ("bench-seq", "bench-burst", "bench-baseline", "bench-seq-escalate"):
                core.create_namespace({"metadata": {"name": ns}})
            operator = OperatorProcess(cluster, identity, log_path=Path(tmp) / "operator.log", env={
                "MLFUNCTIONS_RESYNC_SECONDS": str(RESYNC_SECONDS), "MLFUNCTIONS_LOG_LEVEL": "WARNING",
                "MLFUNCTIONS_CREATE_DEFAULT_MODEL_STORE": "false"})
            audit = cluster.audit_log
            try:
                operator.start()
                baseline = baseline_writes(api, "bench-baseline", sequential)
                time.sleep(5)  # kopf's bookkeeping of those MLFunctions (finalizer, annotations) is not counted below

                began_sequential = datetime.now().astimezone()
                latencies = sequential_latencies(api, "bench-seq", sequential, operator)
                create_requests = requests_between(audit, began_sequential, datetime.now().astimezone())
                rss_after_sequential = peak_rss_mb(operator.pid)

                watcher = StatusWatcher(api, "bench-burst")
                names = [f"burst-{i}" for i in range(burst)]
                servers = {name: pid for name, pid in cluster.processes().items()
                           if name in ("kube-apiserver", "etcd")}
                pids = {"operator": operator.pid, "iris-server": iris.pid, **servers}
                cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                profiler = start_profiler(operator.pid)
                began = time.monotonic()
                with ThreadPoolExecutor(16) as pool:
                    list(pool.map(lambda n: custom.create_namespaced_custom_object(
                        GROUP, VERSION, "bench-burst", "mlfunctions", mlfunction(n)), names))
                created = time.monotonic() - began
                if not watcher.wait_for(set(names), timeout=300):
                    missing = len(set(names) - watcher.posted.keys())
                    raise RuntimeError(f"{missing} of {burst} without status after 300s\n{operator.log_tail()}")
                reconciled = max(watcher.posted.values()) - began
                stop_profiler(profiler)
                cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
                watcher.stop()
                assert all(children_present(api, "bench-burst", n) for n in names[::50])
                rss = peak_rss_mb(operator.pid)

                # At rest: nothing changes; every object resyncs once per RESYNC_SECONDS (±10 %).
                time.sleep(10)  # the burst's last writes and their watch events settle
                rest_from = datetime.now().astimezone()
                time.sleep(rest_seconds)
                rest = requests_between(audit, rest_from, datetime.now().astimezone())
                objects = len(custom.list_cluster_custom_object(GROUP, VERSION, "mlfunctions")["items"])
                rss_at_rest, resident_at_rest = peak_rss_mb(operator.pid), peak_rss_mb(operator.pid, "VmRSS")

                grant_escalate_and_bind(cluster, identity)
                time.sleep(1)  # RBAC caches catch up
                escalate_latencies = sequential_latencies(api, "bench-seq-escalate", sequential, operator)
            finally:
                operator.stop()
                stop_iris_server(iris)
            version = cluster.version
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    base_p50 = percentile(baseline, 0.5) * 1000
    per_minute = sum(rest.values()) * 60 / rest_seconds
    per_resync = per_minute * RESYNC_SECONDS / 60
    return {
        "kubernetes": version,
        "create_to_status": {"count": sequential, "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
                             "median_ms": round(statistics.median(latencies) * 1000, 1),
                             "operator_requests_per_mlfunction": round(sum(create_requests.values()) / sequential,
                                                                       2),
                             "operator_requests_by_kind": _per(create_requests, sequential)},
        "create_to_status_with_escalate_and_bind": {
            "count": sequential, "p50_ms": round(percentile(escalate_latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(escalate_latencies, 0.99) * 1000, 1)},
        "anchor_direct_writes": {"count": sequential, "p50_ms": round(base_p50, 1),
                                 "p99_ms": round(percentile(baseline, 0.99) * 1000, 1)},
        "operator_over_anchor_p50": round(p50 / base_p50, 2),
        "burst": {"count": burst, "create_seconds": round(created, 2), "all_reconciled_seconds": round(reconciled, 2),
                  "per_second": round(burst / reconciled, 1),
                  "cpu_ms_per_mlfunction": {name: round(seconds * 1000 / burst, 1) for name, seconds in cpu.items()},
                  "machine_load_average": round(os.getloadavg()[0], 1)},
        "peak_rss_mb": {"after_sequential": round(rss_after_sequential, 1), "after_burst": round(rss, 1),
                        "after_rest": round(rss_at_rest, 1)},
        "resident_mb_at_rest": round(resident_at_rest, 1),
        "at_rest": {"mlfunctions": objects, "resync_seconds": RESYNC_SECONDS, "window_seconds": rest_seconds,
                    "requests_per_minute": round(per_minute, 1),
                    "requests_per_resync_per_mlfunction": round(per_resync / objects, 3),
                    "by_kind_per_minute": {kind: round(n * 60 / rest_seconds, 1)
                                           for kind, n in sorted(rest.items(), key=lambda kv: -kv[1])}},
    }


def _per(counts: Counter, count: int) -> dict[str, float]:
    return {kind: round(n / count, 2) for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])}


def worktree(commit: str) -> Path:
    """A checkout of `commit` under /tmp (made once, reused)."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", commit], check=True, capture_output=True,
                         text=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"mlfunctions-bench-{sha[:12]}"
    if not (path / "operator").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(path), sha],
                       check=True, capture_output=True)
    return path


def phase_in_subprocess(tree: Path, args: argparse.Namespace) -> dict:
    """Run one phase in a Python whose packages come from `tree`, so nothing of the other tree is imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), *(str(tree / d) for d in PACKAGE_DIRS)])}
    completed = subprocess.run(
        [sys.executable, __file__, "--phase", str(tree), "--sequential", str(args.sequential), "--burst",
         str(args.burst), "--rest-seconds", str(args.rest_seconds)], env=env, stdout=subprocess.PIPE, text=True,
        check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the phase in {tree} failed (exit {completed.returncode})")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def git_describe(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], check=True, capture_output=True,
                          text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--rest-seconds", type=float, default=120.0, help="the at-rest window (two resyncs)")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT, help="'none': no baseline phase")
    parser.add_argument("--tree", default="HEAD", help="the commit measured as 'after' ('.': the working tree)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # internal: run one phase from this tree, print JSON
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(Path(args.phase), args.sequential, args.burst, args.rest_seconds)))
        return 0
    after_tree = REPO if args.tree == "." else worktree(args.tree)
    phases = {}
    if args.baseline_commit != "none":
        phases["before"] = {"tree": str(worktree(args.baseline_commit))}
    phases["after"] = {"tree": str(after_tree)}
    for name, phase in phases.items():  # one after the other: they would share the machine's two cores
        tree = Path(phase["tree"])
        phase.update(commit=git_describe(tree), **phase_in_subprocess(tree, args))
        phase["targets_met"] = targets_met(phase)
        phase["gaps"] = gaps(phase, args.burst, args.sequential)
    result = {
        "benchmark": "operator",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "how": "both phases in one run of bench/bench_operator.py, one after the other, each on a control plane "
               "of its own; 'before' runs the commit before the lighter operator (#17.3) from a git worktree "
               "under /tmp. API requests are counted from the API server's audit log (the operator's "
               "ServiceAccount only). Medians; the machine is shared, see machine_load_average.",
        "targets": TARGETS,
        **phases,
    }
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    for name, phase in phases.items():
        c, b, r = phase["create_to_status"], phase["burst"], phase["at_rest"]
        print(f"operator {name} ({phase['commit'][:7]}): create->status p50 {c['p50_ms']} ms "
              f"({c['operator_requests_per_mlfunction']} requests), with escalate+bind p50 "
              f"{phase['create_to_status_with_escalate_and_bind']['p50_ms']} ms; {b['count']} at once in "
              f"{b['all_reconciled_seconds']} s; peak RSS {max(phase['peak_rss_mb'].values())} MB; at rest "
              f"{r['requests_per_minute']} requests/min for {r['mlfunctions']} MLFunctions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
