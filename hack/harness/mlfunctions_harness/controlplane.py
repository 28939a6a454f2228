"""A real Kubernetes control plane on 127.0.0.1 for tests, benchmarks and the local stack (or on a node's address).

`LocalControlPlane` runs etcd, kube-apiserver (RBAC on, ServiceAccount tokens issued) and kube-controller-manager
(garbage collector, namespace and ServiceAccount controllers) the way envtest does, from binaries built by
hack/control-plane-binaries.sh. With `node_address`, it serves a real node (node.py): the API server binds and
advertises that address (pods reach it through the `kubernetes` Service), authorizes kubelets (Node, RBAC), and the
controller manager adds the controllers pods need. `ExistingCluster` offers the same interface over KUBECONFIG, so
the same tests run against kind or any other real cluster with USE_EXISTING_CLUSTER=1. `from_environment()` picks
one.

Nothing started here outlives its owner: see processes.py.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

from . import kubeconfig, pki, processes
from .processes import free_port

log = logging.getLogger("mlfunctions_harness.controlplane")

REPO_ROOT = Path(__file__).resolve().parents[3]
BINARIES_SCRIPT = REPO_ROOT / "hack" / "control-plane-binaries.sh"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the `kubernetes` Service
# Enough controllers for what the operator relies on (owner-based garbage collection, namespace deletion, a
# `default` ServiceAccount per namespace). The Deployment controller is left out on purpose: with no scheduler
# or kubelet, Deployments could never become available, and tests set their status themselves.
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
)
# With a node, what a cluster needs for pods to run, be reached and keep their volumes: workloads, Service
# endpoints, node health (the not-ready taint is removed by node-lifecycle) and PersistentVolumeClaim binding.
NODE_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "job-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "node-lifecycle-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "pod-garbage-collector-controller",
    "disruption-controller",
    "ttl-after-finished-controller",
)


class ControlPlaneError(RuntimeError):
    """The control plane could not be provided or started; the message says why."""


def binaries_dir() -> Path:
    """Where etcd, kube-apiserver and kube-controller-manager are: built once and cached, or KUBEBUILDER_ASSETS.

    The build prints its progress on our stderr, since the first one takes minutes.
    """
    result = subprocess.run(["bash", str(BINARIES_SCRIPT)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if result.returncode != 0:
        raise ControlPlaneError(f"{BINARIES_SCRIPT} failed (exit {result.returncode}); see its output above")
    return Path(result.stdout.strip().splitlines()[-1])


class _ClusterAccess:
    """What tests and tools need of any cluster: clients, kubectl and credentials for a ServiceAccount."""

    kubeconfig: Path
    workdir: Path
    bin_dir: Path | None = None

    def api_client(self) -> client.ApiClient:
        """A kubernetes client with the admin kubeconfig's identity."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    @property
    def server(self) -> str:
        return self._cluster_entry()["server"]

    @property
    def kubectl(self) -> str:
        if self.bin_dir and (self.bin_dir / "kubectl").exists():
            return str(self.bin_dir / "kubectl")
        found = shutil.which("kubectl")
        if not found:
            raise ControlPlaneError("no kubectl: build it with hack/control-plane-binaries.sh or put one on PATH")
        return found

    @property
    def version(self) -> str:
        with self.api_client() as api:
            return client.VersionApi(api).get_code().git_version

    def _cluster_entry(self) -> dict:
        return kubeconfig.current_cluster_entry(self.kubeconfig)

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path | None = None,
                                   expiration_seconds: int = 24 * 3600) -> Path:
        """A kubeconfig that acts as ServiceAccount `namespace/name`, with a token from the TokenRequest API.

        A process using it has exactly that account's RBAC, which is the point: the operator is never run as admin.
        """
        with self.api_client() as api:
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
            )
            token = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
        path = path or self.workdir / "serviceaccounts" / f"{namespace}-{name}.kubeconfig"
        return kubeconfig.write_token(path, self._cluster_entry(), token.status.token, f"{namespace}-{name}")


class LocalControlPlane(_ClusterAccess):
    """etcd + kube-apiserver + kube-controller-manager on free 127.0.0.1 ports, in a temporary directory."""

    def __init__(self, workdir: Path | None = None, bin_dir: Path | None = None, keep_workdir: bool = False,
                 node_address: str | None = None, audit_policy: Path | None = None):
        """`node_address`: serve a node there (the address must exist on this machine already: node_network.py).
        `audit_policy`: the API server writes the requests that policy selects to `audit_log` (JSON lines)."""
        self._own_workdir = workdir is None and not keep_workdir
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mlfunctions-cp-"))
        self.bin_dir = bin_dir
        self.node_address = node_address
        self.address = node_address or "127.0.0.1"
        self.pki: pki.Pki | None = None
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.audit_policy = audit_policy
        self.audit_log = self.workdir / "audit.log"
        self._processes: list[tuple[str, subprocess.Popen]] = []
        self.started_seconds: float | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalControlPlane:
        if self._processes:
            raise ControlPlaneError("this control plane is already running")
        began = time.monotonic()
        self.bin_dir = self.bin_dir or binaries_dir()
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - began
        log.info("control plane ready in %.1fs: %s (kubeconfig %s)", self.started_seconds, self.server,
                 self.kubeconfig)
        return self

    def stop(self) -> None:
        """Stop every process, newest first (the controller manager before the API server before etcd)."""
        while self._processes:
            name, process = self._processes.pop()
            processes.stop(process)
            log.debug("%s stopped", name)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def processes(self) -> dict[str, int]:
        """The running components by name, with their PIDs."""
        return {name: p.pid for name, p in self._processes if p.poll() is None}

    # -- components -------------------------------------------------------------------------------------------

    def _start(self) -> None:
        certs = self.pki = pki.generate(self.workdir / "pki", SERVICE_IP, (self.address,))
        etcd_url = self._start_etcd()
        port = free_port(self.address)
        server = f"https://{self.address}:{port}"
        kubeconfig.write_admin(self.kubeconfig, kubeconfig.cluster_entry(server, certs.ca_cert),
                               certs.admin_cert, certs.admin_key)
        self._start_apiserver(certs, etcd_url, port)
        self._wait_healthy("kube-apiserver", f"{server}/readyz", verify=str(certs.ca_cert),
                           cert=(str(certs.admin_cert), str(certs.admin_key)))
        self._start_controller_manager(certs)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        process = processes.spawn([str(self.bin_dir / name), *args], self.workdir / "logs" / f"{name}.log")
        self._processes.append((name, process))
        return process

    def _start_etcd(self) -> str:
        client_port, peer_port = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", [
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync",  # a throwaway store: durability buys nothing here and costs seconds
            "--log-level=warn",
        ])
        self._wait_healthy("etcd", f"{client_url}/health")
        return client_url

    def _start_apiserver(self, certs: pki.Pki, etcd_url: str, port: int) -> None:
        self._spawn("kube-apiserver", [
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={certs.serving_cert}",
            f"--tls-private-key-file={certs.serving_key}",
            f"--client-ca-file={certs.ca_cert}",
            f"--secure-port={port}",
            f"--bind-address={self.address}",
            # 127.0.0.1 on machines without a default route, which have nothing else to advertise; with a node,
            # the `kubernetes` Service's endpoint, so an address pods reach.
            f"--advertise-address={self.address}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            *(self._node_apiserver_flags(certs) if self.node_address else ["--authorization-mode=RBAC"]),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={certs.sa_public_key}",
            f"--service-account-signing-key-file={certs.sa_signing_key}",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            *([f"--audit-policy-file={self.audit_policy}", f"--audit-log-path={self.audit_log}"]
              if self.audit_policy else []),
            "--v=1",
        ])

    @staticmethod
    def _node_apiserver_flags(certs: pki.Pki) -> list[str]:
        return [
            "--authorization-mode=Node,RBAC",  # kubelets see only their own node's pods, secrets and volumes
            "--enable-admission-plugins=NodeRestriction",
            # `kubectl logs/exec` reach the kubelet by IP: the node's name resolves nowhere.
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={certs.admin_cert}",
            f"--kubelet-client-key={certs.admin_key}",
        ]

    def _start_controller_manager(self, certs: pki.Pki) -> None:
        controllers = CONTROLLERS + (NODE_CONTROLLERS if self.node_address else ())
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            f"--controllers={','.join(controllers)}",
            "--secure-port=0",
            f"--service-account-private-key-file={certs.sa_signing_key}",
            f"--root-ca-file={certs.ca_cert}",
            "--v=1",
        ])

    def _wait_healthy(self, name: str, url: str, timeout: float = 60.0, **request_options) -> None:
        process = next(p for n, p in self._processes if n == name)
        try:
            processes.wait_healthy(url, process, name, self.workdir / "logs" / f"{name}.log", timeout,
                                   **request_options)
        except processes.NotHealthy as error:
            raise ControlPlaneError(str(error)) from None


class ExistingCluster(_ClusterAccess):
    """Any real cluster reached through KUBECONFIG (kind, say), with the same interface as LocalControlPlane."""

    def __init__(self, kubeconfig_path: Path | None = None):
        path = kubeconfig_path or Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        if not path.exists():
            raise ControlPlaneError(f"USE_EXISTING_CLUSTER is set but the kubeconfig {path} does not exist")
        self.kubeconfig = path
        self.workdir = Path(tempfile.mkdtemp(prefix="mlfunctions-cluster-"))
        self.started_seconds = 0.0

    def __enter__(self) -> ExistingCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> ExistingCluster:
        return self

    def stop(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def use_existing_cluster() -> bool:
    return os.environ.get("USE_EXISTING_CLUSTER", "").lower() in ("1", "true", "yes")


def from_environment() -> LocalControlPlane | ExistingCluster:
    """The cluster to use: an existing one when USE_EXISTING_CLUSTER=1, otherwise a local control plane."""
    return ExistingCluster() if use_existing_cluster() else LocalControlPlane()
