"""The API objects a cluster has beside its node before any workload: DNS and storage, as a real cluster has them.

- `kube-system/kube-dns`: the Service pods' resolv.conf points at (kubelet's clusterDNS), with a fixed ClusterIP.
  CoreDNS runs as a process on the node address (no image needed), so the Service has no selector and one
  EndpointSlice naming that address; kube-proxy forwards to it like to any endpoint.
- CoreDNS's ServiceAccount and ClusterRole (what kubeadm gives it): it reads Services, EndpointSlices, Pods and
  Namespaces with that identity, not as admin.
- `local-path-storage`: local-path-provisioner's ServiceAccount, RBAC, script ConfigMap and the default
  StorageClass `local-path` (WaitForFirstConsumer, Delete), as in its own deploy manifest. The provisioner process
  uses that account; its helper pods run in that namespace.
"""

from __future__ import annotations

from kubernetes import client, utils

from .node_network import DNS_SERVICE_IP, NODE_IP

COREDNS_NAMESPACE, COREDNS_ACCOUNT = "kube-system", "coredns"
LOCAL_PATH_NAMESPACE, LOCAL_PATH_ACCOUNT = "local-path-storage", "local-path-provisioner-service-account"
LOCAL_PATH_CONFIGMAP = "local-path-config"
PROVISIONER_NAME = "rancher.io/local-path"
STORAGE_CLASS = "local-path"


def _cluster_role(name: str, rules: list[dict]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": rules}


def _binding(kind: str, name: str, namespace: str, account: str) -> dict:
    metadata = {"name": name} | ({"namespace": namespace} if kind == "Role" else {})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": f"{kind}Binding", "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def _account(namespace: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


def dns_objects() -> list[dict]:
    labels = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    return [
        _account(COREDNS_NAMESPACE, COREDNS_ACCOUNT),
        _cluster_role("system:coredns", [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
             "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ]),
        _binding("ClusterRole", "system:coredns", COREDNS_NAMESPACE, COREDNS_ACCOUNT),
        {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": COREDNS_NAMESPACE, "labels": labels},
            "spec": {"clusterIP": DNS_SERVICE_IP,
                     "ports": [{"name": n, "protocol": p, "port": 53, "targetPort": 53} for n, p in ports]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kube-dns-node", "namespace": COREDNS_NAMESPACE,
                         "labels": {"kubernetes.io/service-name": "kube-dns",
                                    "endpointslice.kubernetes.io/managed-by": "mlfunctions-harness"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
            "ports": [{"name": n, "protocol": p, "port": 53} for n, p in ports],
        },
    ]


def storage_objects(helper_pod_yaml: str) -> list[dict]:
    scripts = {
        "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
        "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
        "helperPod.yaml": helper_pod_yaml,
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCAL_PATH_NAMESPACE}},
        _account(LOCAL_PATH_NAMESPACE, LOCAL_PATH_ACCOUNT),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "local-path-provisioner-role", "namespace": LOCAL_PATH_NAMESPACE},
         "rules": [{"apiGroups": [""], "resources": ["pods"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]},
        _binding("Role", "local-path-provisioner-role", LOCAL_PATH_NAMESPACE, LOCAL_PATH_ACCOUNT),
        _cluster_role("local-path-provisioner-role", [
            {"apiGroups": [""], "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["persistentvolumes"],
             "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
        ]),
        _binding("ClusterRole", "local-path-provisioner-role", LOCAL_PATH_NAMESPACE, LOCAL_PATH_ACCOUNT),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": LOCAL_PATH_CONFIGMAP, "namespace": LOCAL_PATH_NAMESPACE}, "data": scripts},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": STORAGE_CLASS,
                      "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": PROVISIONER_NAME, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"},
    ]


def create(api: client.ApiClient, objects: list[dict]) -> None:
    for document in objects:
        utils.create_from_dict(api, document)
