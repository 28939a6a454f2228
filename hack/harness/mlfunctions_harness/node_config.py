"""The configuration files of the node's components, as pure functions of paths and addresses.

Why a setting differs from its default is said where it is set; the harness README's node section gives the whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .node_network import BRIDGE, DNS_SERVICE_IP, NODE_IP, POD_CIDR

CLUSTER_DOMAIN = "cluster.local"
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
PROXY_HEALTHZ_PORT = 10256
PROXY_METRICS_PORT = 10249
SCHEDULER_PORT = 10259
COREDNS_READY_PORT = 8181


def kubelet_config(containerd_socket: Path, ca_cert: Path, pod_logs: Path) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": NODE_IP,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        # The API server (logs, exec) presents the admin certificate; everything else is asked of the API server.
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca_cert)}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{containerd_socket}",
        # PID 1 is not systemd, and this machine's cgroups are v1: no QoS hierarchy, nothing reserved.
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods with dnsPolicy Default get no host resolver either: this machine's DNS is not the cluster's.
        "resolvConf": "",
        # Small disks: eviction at the last percent only, and no image garbage collection, since every image
        # was imported here and none could be pulled back.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%",
                         "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "podLogsDir": str(pod_logs),  # not /var/log/pods: everything of the node stays in its work dir
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def cni_network_name(node_name: str) -> str:
    """Per node: libcni caches results under /var/lib/cni by network name, and the sweep removes them by it."""
    return f"{node_name}-pods"


def cni_conflist(node_name: str, ipam_dir: Path) -> str:
    """A bridge with the pods' gateway on it and host-local addresses from this node's pod range."""
    config = {
        "cniVersion": "1.0.0",
        "name": cni_network_name(node_name),
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # Pods talk to this machine and each other only (node_network.py): nothing to masquerade.
                "ipMasq": False,
                "hairpinMode": True,  # a pod reaching itself through its own Service
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(config, indent=2)


def corefile(kubeconfig: Path) -> str:
    """CoreDNS on the node address, answering for the cluster domain from the API server.

    Nothing is forwarded: names outside the cluster are not the cluster's to answer, and resolving them would send
    pods' queries off this machine.
    """
    return f""".:53 {{
    bind {NODE_IP}
    errors
    ready {NODE_IP}:{COREDNS_READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""


def local_path_config(volumes_dir: Path) -> str:
    """Where local-path-provisioner puts volumes on this node: below the node's work dir."""
    return json.dumps({"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(volumes_dir)]}]})


def local_path_helper_pod(helper_image: str) -> str:
    """The pod in which the provisioner creates (mkdir -m 0777) and deletes a volume's directory on the node."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "priorityClassName": "system-node-critical",
            "containers": [{"name": "helper-pod", "image": helper_image, "imagePullPolicy": "Never"}],
        },
    }
    return yaml.safe_dump(pod, sort_keys=False)
