"""The node does what a cluster's node does: it turns Ready (the lifecycle controller lifts its taint), runs pods as
the chart runs them, resolves and routes Service names, binds volumes, and keeps cluster traffic on this machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from kubernetes import client, utils
from mlfunctions_harness import node_network, processes
from mlfunctions_harness.node import NOT_READY_TAINT
from node_pods import NON_ROOT_UID, logs, restricted_pod, wait_phase

# The first test may start the node on a fresh machine: the node binaries and the images are built then (minutes).
pytestmark = pytest.mark.timeout(1800)


def test_node_is_ready_untainted_and_reachable_at_its_address(node, node_api):
    core = client.CoreV1Api(node_api)
    found = core.read_node(node.name)
    assert {c.type: c.status for c in found.status.conditions}["Ready"] == "True"
    assert NOT_READY_TAINT not in {t.key for t in found.spec.taints or []}
    assert {(a.type, a.address) for a in found.status.addresses} >= {("InternalIP", node_network.NODE_IP)}
    assert found.status.node_info.kubelet_version == node.control_plane.version
    # Pods reach the API server through the `kubernetes` Service: its endpoint is the node address, not loopback.
    slices = client.DiscoveryV1Api(node_api).list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=kubernetes").items
    assert [e.addresses for s in slices for e in s.endpoints] == [[node_network.NODE_IP]]


def test_guard_is_the_first_postrouting_rule_and_drops_every_cluster_range(node):
    hooks = subprocess.run(["iptables", "-t", "mangle", "-S", "POSTROUTING"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert hooks[1] == f"-A POSTROUTING -j {node_network.GUARD_CHAIN}"  # [0] is the policy
    guard = subprocess.run(["iptables", "-t", "mangle", "-S", node_network.GUARD_CHAIN], capture_output=True,
                           text=True, check=True).stdout
    for cidr in node_network.CLUSTER_RANGES:
        assert f"-A {node_network.GUARD_CHAIN} -d {cidr} -j DROP" in guard
    assert f"-A {node_network.GUARD_CHAIN} -o lo -j RETURN" in guard


def test_pod_runs_as_uid_65532_with_a_read_only_root(node, node_api, node_namespace):
    core = client.CoreV1Api(node_api)
    pause = node.sandbox_image
    utils.create_from_dict(node_api, restricted_pod("pause", pause, restart_policy="Always"),
                           namespace=node_namespace)
    pod = wait_phase(core, node_namespace, "pause", {"Running"})
    assert pod.spec.node_name == node.name
    # Checked from this machine, on the container's process itself.
    pid = node.container_pid(pod.status.container_statuses[0].container_id)
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split() == [str(NON_ROOT_UID)] * 4
    mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    root = next(line.split() for line in mounts if line.split()[4] == "/")
    assert "ro" in root[5].split(",")


def test_service_names_resolve_and_route_from_pods_and_from_this_machine(node, node_api, node_namespace,
                                                                        iris_server_image):
    core = client.CoreV1Api(node_api)
    web = restricted_pod("web", iris_server_image, ["python", "-m", "http.server", "8080", "--directory", "/tmp"],
                         restart_policy="Always")
    web["metadata"]["labels"] = {"app": "web"}
    web["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    utils.create_from_dict(node_api, web, namespace=node_namespace)
    service = core.create_namespaced_service(node_namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=8080)])))
    web_pod = wait_phase(core, node_namespace, "web", {"Running"})
    assert node.wait_service_routed(node_namespace, "web") == {f"{web_pod.status.pod_ip}:8080"}

    probe = """
import socket, sys, urllib.request
for name in sys.argv[1:]:
    print(name, socket.gethostbyname(name))
socket.create_connection(("kubernetes.default.svc", 443), timeout=10).close()
print("status", urllib.request.urlopen("http://web:8080/", timeout=10).status)
"""
    names = ["web", f"web.{node_namespace}.svc", f"web.{node_namespace}.svc.cluster.local",
             "kube-dns.kube-system.svc.cluster.local"]
    utils.create_from_dict(node_api, restricted_pod("probe", iris_server_image, ["python", "-c", probe, *names]),
                           namespace=node_namespace)
    wait_phase(core, node_namespace, "probe", {"Succeeded"})
    output = logs(core, node_namespace, "probe").splitlines()
    cluster_ip = service.spec.cluster_ip
    assert output == [*(f"{n} {cluster_ip}" for n in names[:3]), f"{names[3]} {node_network.DNS_SERVICE_IP}",
                      "status 200"]
    # From this machine too, through kube-proxy's OUTPUT rules.
    assert requests.get(f"http://{cluster_ip}:8080/", timeout=10).status_code == 200


def test_claim_binds_a_provisioned_volume_that_a_non_root_pod_writes(node, node_api, node_namespace,
                                                                     iris_server_image):
    core = client.CoreV1Api(node_api)
    core.create_namespaced_persistent_volume_claim(node_namespace, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="data"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(
                                                    requests={"storage": "64Mi"}))))
    writer = restricted_pod(
        "writer", iris_server_image, ["python", "-c", "open('/data/hello', 'w').write('from the pod')"],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        mounts=[{"name": "data", "mountPath": "/data"}])
    utils.create_from_dict(node_api, writer, namespace=node_namespace)
    wait_phase(core, node_namespace, "writer", {"Succeeded"})

    claim = core.read_namespaced_persistent_volume_claim("data", node_namespace)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "local-path"  # the default class: the chart's claims name none
    volume = core.read_persistent_volume(claim.spec.volume_name)
    directory = node.workdir / "volumes"
    written = next(directory.glob(f"{volume.metadata.name}_*")) / "hello"
    assert written.read_text() == "from the pod"
    assert written.stat().st_uid == NON_ROOT_UID

    # Reclaim policy Delete: the provisioner's helper pod removes the directory once the claim is gone.
    core.delete_namespaced_pod("writer", node_namespace)
    core.delete_namespaced_persistent_volume_claim("data", node_namespace)
    processes.wait_for(lambda: not written.parent.exists(), 120, "the released volume's directory to be deleted")
