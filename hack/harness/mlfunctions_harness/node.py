"""A real Kubernetes node on this machine, beside its own control plane: pods run, Services answer, volumes bind.

`LocalNode` starts, in this order: the traffic guard and the node address (node_network.py, before anything can
send a packet), a `LocalControlPlane` serving the node at that address, its own containerd (containerd.py) with
the pause image imported, kubelet, kube-proxy (iptables), kube-scheduler, CoreDNS as a process behind the
`kube-dns` Service, and local-path-provisioner with the default StorageClass (node_objects.py). It is started when
the node is Ready and its not-ready taint has been removed by the node lifecycle controller.

Binaries come from hack/node-binaries.sh and hack/control-plane-binaries.sh (built once, cached); Debian's
packages from hack/node-packages.sh. Everything the node makes is below its work dir,
/var/lib/mlfunctions-node/<name>/ (MLFUNCTIONS_NODE_ROOT), recorded with its owner's PID. Stopping it, and
starting it again after a run that was killed, is one sweep (node_sweep.py): no process, mount, network namespace,
cgroup, iptables rule or address is left, only the components' logs. Needs root. One node per network namespace.

    python -m mlfunctions_harness.node up [--name NAME]      start, print the kubeconfig, run until interrupted
    python -m mlfunctions_harness.node sweep [--name NAME]   remove what a killed run left
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import urllib3
from kubernetes import client

from . import containerd, kubeconfig, node_config, node_network, node_objects, node_sweep, pki, processes
from .controlplane import REPO_ROOT, LocalControlPlane, binaries_dir
from .node_network import CLUSTER_CIDR, NODE_IP

log = logging.getLogger("mlfunctions_harness.node")

NODE_BINARIES_SCRIPT = REPO_ROOT / "hack" / "node-binaries.sh"
NODE_PACKAGES_SCRIPT = REPO_ROOT / "hack" / "node-packages.sh"
STATE_ROOT = Path(os.environ.get("MLFUNCTIONS_NODE_ROOT", "/var/lib/mlfunctions-node"))
DEFAULT_NAME = "mlfunctions-node"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


class NodeError(RuntimeError):
    """The node could not be started; the message says why, with the end of the component's log."""


def _script_output(script: Path) -> str:
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False)
    if result.returncode != 0:
        raise NodeError(f"{script} failed (exit {result.returncode}); see its output above")
    return result.stdout.strip()


class LocalNode:
    """One node and its control plane. `control_plane` gives clients, kubectl and ServiceAccount kubeconfigs."""

    def __init__(self, name: str = DEFAULT_NAME, state_root: Path = STATE_ROOT):
        self.name = name
        self.workdir = state_root / name
        self.logs = self.workdir / "logs"
        self.containerd = node_sweep.containerd_paths(self.workdir)
        self.control_plane: LocalControlPlane | None = None
        self._processes: list[tuple[str, subprocess.Popen]] = []
        self._owned = False
        self.bin_dir: Path | None = None
        self.sandbox_image: str | None = None  # the pause image, also a minimal image for checks of the node itself
        self.started_seconds: float | None = None
        self.ready_seconds: float | None = None  # of started_seconds: from the kubelet's start to Ready

    # -- lifecycle --------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalNode:
        if os.geteuid() != 0:
            raise NodeError("a node needs root (containerd, mounts, iptables, an address on lo)")
        began = time.monotonic()
        _script_output(NODE_PACKAGES_SCRIPT)
        self.bin_dir = Path(_script_output(NODE_BINARIES_SCRIPT).splitlines()[-1])
        control_plane_bin = binaries_dir()
        node_sweep.sweep_leftovers(self.workdir.parent, this=self.name)
        shutil.rmtree(self.logs, ignore_errors=True)  # the previous run's, kept until now
        node_sweep.record_owner(self.workdir)
        self._owned = True
        atexit.register(self.stop)
        try:
            node_network.install(self.workdir / node_sweep.NETWORK_STATE)
            self.control_plane = LocalControlPlane(self.workdir / "control-plane", control_plane_bin,
                                                   node_address=NODE_IP).start()
            self._start_node()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - began
        log.info("node %s Ready in %.1fs (kubelet to Ready %.1fs), API server %s", self.name,
                 self.started_seconds, self.ready_seconds, self.control_plane.server)
        return self

    def stop(self) -> None:
        """Sweep: every process (the control plane's too, whose work dir is the node's), mount, cgroup, rule and
        address of the node goes at once. Nothing is kept, so nothing needs a graceful shutdown."""
        atexit.unregister(self.stop)
        if not self._owned:  # never started here: the work dir may be another process's running node
            return
        self._owned = False
        began = time.monotonic()
        node_sweep.sweep(self.workdir, network=True)
        while self._processes:
            processes.stop(self._processes.pop()[1])  # reaps what the sweep killed
        if self.control_plane:
            self.control_plane.stop()
            self.control_plane = None
        log.info("node %s swept in %.1fs", self.name, time.monotonic() - began)

    def processes(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._processes if p.poll() is None}

    def container_pid(self, container_id: str) -> int:
        """The host PID of a pod's container, from its status' containerID (containerd://<id>)."""
        return containerd.container_pid(self.containerd, container_id.removeprefix("containerd://"))

    def wait_service_routed(self, namespace: str, name: str, timeout: float = 60.0) -> set[str]:
        """Wait until Service `namespace/name` has ready endpoints and kube-proxy routes its ClusterIP to every one
        of them; returns them (`address:port`). Before that, a request to the ClusterIP is refused or lost."""
        with self.control_plane.api_client() as api:
            discovery = client.DiscoveryV1Api(api)

            def routed() -> set[str]:
                slices = discovery.list_namespaced_endpoint_slice(
                    namespace, label_selector=f"kubernetes.io/service-name={name}").items
                endpoints = {f"{address}:{port.port}" for s in slices for e in s.endpoints or []
                             if e.conditions.ready for address in e.addresses for port in s.ports or []}
                return endpoints if endpoints and endpoints <= node_network.proxied_endpoints() else set()

            return processes.wait_for(routed, timeout, f"Service {namespace}/{name} to be routed", interval=0.1)

    def import_image(self, archive: Path) -> None:
        """Load an image archive (docker save or OCI) for pods with imagePullPolicy Never/IfNotPresent."""
        containerd.import_image(self.containerd, archive)

    # -- components -------------------------------------------------------------------------------------------

    def _start_node(self) -> None:
        certs = self.control_plane.pki
        images = self.bin_dir / "images"
        self.sandbox_image = containerd.archive_image_name(images / "pause.tar")
        helper_image = containerd.archive_image_name(images / "busybox.tar")
        self._processes.append(("containerd", containerd.start(self.containerd, self.sandbox_image)))
        for archive in (images / "pause.tar", images / "busybox.tar"):
            self.import_image(archive)
        self.containerd.cni_conf_dir.joinpath("10-pods.conflist").write_text(
            node_config.cni_conflist(self.name, self.workdir / "cni-ipam"))

        kubelet_started = time.monotonic()
        self._start_kubelet(certs)
        self._start_proxy(certs)
        self._start_scheduler(certs)
        with self.control_plane.api_client() as api:
            node_objects.create(api, node_objects.dns_objects())
            node_objects.create(api, node_objects.storage_objects(node_config.local_path_helper_pod(helper_image)))
        self._start_coredns()
        self._start_provisioner(helper_image)

        self._wait_healthy("kubelet", f"http://{NODE_IP}:{node_config.KUBELET_HEALTHZ_PORT}/healthz")
        self._wait_healthy("kube-proxy", f"http://{NODE_IP}:{node_config.PROXY_HEALTHZ_PORT}/healthz")
        with warnings.catch_warnings():  # its serving certificate is self-signed: only liveness is asked here
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            self._wait_healthy("kube-scheduler", f"https://{NODE_IP}:{node_config.SCHEDULER_PORT}/healthz",
                               verify=False)
        self._wait_healthy("coredns", f"http://{NODE_IP}:{node_config.COREDNS_READY_PORT}/ready")
        self._wait_ready()
        self.ready_seconds = time.monotonic() - kubelet_started

    def _identity(self, certs: pki.Pki, component: str, user: str, group: str | None = None) -> Path:
        cert, key = pki.client_certificate(certs, component, user, group)
        cluster = kubeconfig.cluster_entry(self.control_plane.server, certs.ca_cert)
        return kubeconfig.write_admin(self.workdir / "kubeconfigs" / f"{component}.kubeconfig", cluster, cert, key)

    def _spawn(self, name: str, command: list[str]) -> None:
        self._processes.append((name, processes.spawn(command, self.logs / f"{name}.log")))

    def _start_kubelet(self, certs: pki.Pki) -> None:
        config = self.workdir / "kubelet-config.yaml"
        config.write_text(node_config.kubelet_config(self.containerd.socket, certs.ca_cert, self.workdir / "pod-logs"))
        self._spawn("kubelet", [
            str(self.bin_dir / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={self._identity(certs, 'kubelet', f'system:node:{self.name}', 'system:nodes')}",
            f"--root-dir={self.workdir / 'kubelet'}",
            f"--cert-dir={self.workdir / 'kubelet-pki'}",
            f"--hostname-override={self.name}",
            # Not a loopback address: kubelet would set no node address, and kube-proxy would wait for one forever.
            f"--node-ip={NODE_IP}",
            "--v=1",
        ])

    def _start_proxy(self, certs: pki.Pki) -> None:
        self._spawn("kube-proxy", [
            str(self.bin_dir / "kube-proxy"),
            f"--kubeconfig={self._identity(certs, 'kube-proxy', 'system:kube-proxy')}",
            f"--hostname-override={self.name}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={CLUSTER_CIDR}",
            f"--bind-address={NODE_IP}",
            f"--healthz-bind-address={NODE_IP}:{node_config.PROXY_HEALTHZ_PORT}",
            f"--metrics-bind-address={NODE_IP}:{node_config.PROXY_METRICS_PORT}",
            f"--nodeport-addresses={NODE_IP}/32",  # not 127.0.0.1, which would need route_localnet on the host
            # Leave this machine's conntrack settings as they are: nothing to change back afterwards.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--v=1",
        ])

    def _start_scheduler(self, certs: pki.Pki) -> None:
        identity = self._identity(certs, "kube-scheduler", "system:kube-scheduler")
        self._spawn("kube-scheduler", [
            str(self.bin_dir / "kube-scheduler"),
            f"--kubeconfig={identity}",
            f"--authentication-kubeconfig={identity}",
            f"--authorization-kubeconfig={identity}",
            "--leader-elect=false",
            f"--bind-address={NODE_IP}",
            f"--secure-port={node_config.SCHEDULER_PORT}",
            f"--cert-dir={self.workdir / 'scheduler-pki'}",
            "--v=1",
        ])

    def _start_coredns(self) -> None:
        identity = self.control_plane.service_account_kubeconfig(
            node_objects.COREDNS_NAMESPACE, node_objects.COREDNS_ACCOUNT,
            self.workdir / "kubeconfigs" / "coredns.kubeconfig")
        corefile = self.workdir / "Corefile"
        corefile.write_text(node_config.corefile(identity))
        self._spawn("coredns", [str(self.bin_dir / "coredns"), "-conf", str(corefile)])

    def _start_provisioner(self, helper_image: str) -> None:
        identity = self.control_plane.service_account_kubeconfig(
            node_objects.LOCAL_PATH_NAMESPACE, node_objects.LOCAL_PATH_ACCOUNT,
            self.workdir / "kubeconfigs" / "local-path-provisioner.kubeconfig")
        config = self.workdir / "local-path-config.json"
        config.write_text(node_config.local_path_config(self.workdir / "volumes"))
        helper_pod = self.workdir / "local-path-helper-pod.yaml"
        helper_pod.write_text(node_config.local_path_helper_pod(helper_image))
        self._spawn("local-path-provisioner", [
            str(self.bin_dir / "local-path-provisioner"), "start",
            f"--config={config}",
            f"--kubeconfig={identity}",
            f"--namespace={node_objects.LOCAL_PATH_NAMESPACE}",
            f"--service-account-name={node_objects.LOCAL_PATH_ACCOUNT}",
            f"--provisioner-name={node_objects.PROVISIONER_NAME}",
            f"--configmap-name={node_objects.LOCAL_PATH_CONFIGMAP}",
            f"--helper-image={helper_image}",
            f"--helper-pod-file={helper_pod}",
        ])

    def _wait_healthy(self, name: str, url: str, timeout: float = 60.0, **request_options) -> None:
        process = next(p for n, p in self._processes if n == name)
        try:
            processes.wait_healthy(url, process, name, self.logs / f"{name}.log", timeout, **request_options)
        except processes.NotHealthy as error:
            raise NodeError(str(error)) from None

    def _wait_ready(self, timeout: float = 120.0) -> None:
        """Ready, and the not-ready taint gone (the node lifecycle controller's work, as in a real cluster)."""
        with self.control_plane.api_client() as api:
            core = client.CoreV1Api(api)

            def ready() -> bool:
                for name, process in self._processes:
                    if process.poll() is not None:
                        raise NodeError(f"{name} exited with {process.returncode}:\n"
                                        + processes.tail(self.logs / f"{name}.log"))
                try:
                    node = core.read_node(self.name)
                except client.ApiException:
                    return False
                conditions = {c.type: c.status for c in node.status.conditions or []}
                taints = {t.key for t in node.spec.taints or []}
                return conditions.get("Ready") == "True" and NOT_READY_TAINT not in taints

            try:
                processes.wait_for(ready, timeout, f"node {self.name} to be Ready and untainted", interval=0.2)
            except TimeoutError as error:
                raise NodeError(f"{error}; kubelet's log ends with:\n{processes.tail(self.logs / 'kubelet.log')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlfunctions_harness.node", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "sweep"))
    parser.add_argument("--name", default=DEFAULT_NAME)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.action == "sweep":
        node_sweep.sweep_stopped(STATE_ROOT / args.name)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # through `finally`, like Ctrl-C
    node = LocalNode(args.name)
    try:
        node.start()
        print(node.control_plane.kubeconfig, flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
