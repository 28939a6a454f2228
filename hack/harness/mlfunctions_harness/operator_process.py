"""Run the mlfunctions operator the way it runs in a cluster: as its own ServiceAccount, under the RBAC the Helm
chart ships, never as admin. For tests, benchmarks and the local stack.

    identity = install_operator_identity(cluster, "mlfunctions-system", "openfaas-fn")
    with OperatorProcess(cluster, identity, env={"MLFUNCTIONS_RESYNC_SECONDS": "3"}) as operator:
        ...                      # operator.kill() simulates a crash, operator.start() brings it back
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import yaml

from . import processes
from .processes import free_port

log = logging.getLogger("mlfunctions_harness.operator")

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "mlfunctions"
HELM_SCRIPT = REPO_ROOT / "hack" / "helm.sh"
RELEASE = "mlf"


@dataclass(frozen=True)
class OperatorIdentity:
    """The ServiceAccount the operator runs as, and the namespaces its RBAC covers."""

    namespace: str
    service_account: str
    function_namespace: str


def helm() -> str:
    result = subprocess.run(["bash", str(HELM_SCRIPT)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{HELM_SCRIPT} failed (exit {result.returncode})")
    return result.stdout.strip().splitlines()[-1]


def render_operator_rbac(namespace: str, function_namespace: str, kube_version: str,
                         release: str = RELEASE) -> list[dict]:
    """The chart's ServiceAccount, ClusterRole, Roles and bindings, rendered by helm for these namespaces."""
    rendered = subprocess.run(
        [helm(), "template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version,
         "--set", f"functionNamespace={function_namespace}",
         "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"],
        check=True, capture_output=True, text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def install_operator_identity(cluster, namespace: str, function_namespace: str,
                              release: str = RELEASE) -> OperatorIdentity:
    """Create both namespaces (if missing) and apply the chart's RBAC with kubectl, as admin."""
    documents = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                 for n in dict.fromkeys((namespace, function_namespace))]
    documents += render_operator_rbac(namespace, function_namespace, cluster.version, release)
    subprocess.run([cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", "-"],
                   input=yaml.safe_dump_all(documents), check=True, capture_output=True, text=True)
    account = next(d["metadata"]["name"] for d in documents if d["kind"] == "ServiceAccount")
    return OperatorIdentity(namespace=namespace, service_account=account, function_namespace=function_namespace)


class OperatorProcess:
    """`python -m mlfunctions_operator` in a subprocess, with a kubeconfig minted for its ServiceAccount."""

    def __init__(self, cluster, identity: OperatorIdentity, env: dict[str, str] | None = None,
                 log_path: Path | None = None, startup_timeout: float = 60.0):
        self.cluster = cluster
        self.identity = identity
        self.extra_env = env or {}
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="mlfunctions-operator-")) / "operator.log"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.health_port = free_port()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> Self:
        kubeconfig = self.cluster.service_account_kubeconfig(self.identity.namespace, self.identity.service_account)
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MLFUNCTIONS_OPERATOR_NAMESPACE": self.identity.namespace,
            "MLFUNCTIONS_FUNCTION_NAMESPACE": self.identity.function_namespace,
            "MLFUNCTIONS_HEALTH_ADDRESS": f"127.0.0.1:{self.health_port}",
            **self.extra_env,
        }
        self.process = processes.spawn([sys.executable, "-m", "mlfunctions_operator"], self.log_path, env=env)
        self._wait_healthy()
        log.info("operator running as %s/%s (pid %d, log %s)", self.identity.namespace,
                 self.identity.service_account, self.process.pid, self.log_path)
        return self

    def _wait_healthy(self) -> None:
        try:
            processes.wait_healthy(f"http://127.0.0.1:{self.health_port}/healthz", self.process, "the operator",
                                   self.log_path, self.startup_timeout)
        except processes.NotHealthy as error:
            self.stop()
            raise RuntimeError(str(error)) from None

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process)
            self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash or an evicted pod would: no cleanup code runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def log_tail(self, lines: int = 60) -> str:
        return processes.tail(self.log_path, lines)
