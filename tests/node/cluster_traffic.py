"""Sending requests into the node's cluster from this machine, as kube-proxy routes them.

A ClusterIP is an address nothing on this machine owns until kube-proxy has written the NAT rules for it: a packet
sent before then would follow the default route off the machine (the guard drops it; it must not be sent at all).
So every request to a Service first waits until its rules exist and lead to an endpoint (`wait_routed`)."""

from __future__ import annotations

import hashlib
import re
import subprocess

import requests
from mlfunctions_harness import processes

HTTP_TIMEOUT = 120.0  # a training request of the fault test takes several seconds on a loaded machine


def _nat_rules() -> list[str]:
    return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True,
                          timeout=30).stdout.splitlines()


def routed_endpoints(cluster_ip: str, port: int) -> list[str]:
    """The pod addresses kube-proxy's rules send `cluster_ip:port` to (empty: not routed yet, or no endpoint)."""
    rules = _nat_rules()
    service_chain = None
    for rule in rules:
        if (rule.startswith("-A KUBE-SERVICES ") and f"-d {cluster_ip}/32" in rule
                and f"--dport {port} " in rule + " "):
            service_chain = rule.rsplit("-j ", 1)[1].strip()
    if not service_chain:
        return []
    endpoints = []
    for rule in rules:
        if rule.startswith(f"-A {service_chain} ") and "-j KUBE-SEP-" in rule:
            found = re.search(r"-> ([0-9.]+):[0-9]+", rule)
            endpoints.append(found.group(1) if found else rule.rsplit("-j ", 1)[1].strip())
    return endpoints


def wait_routed(cluster_ip: str, port: int, to: set[str] | None = None, timeout: float = 60.0) -> None:
    """Until kube-proxy routes `cluster_ip:port` to an endpoint (to exactly the pod IPs `to`, when given)."""
    def routed() -> bool:
        endpoints = set(routed_endpoints(cluster_ip, port))
        return bool(endpoints) and (to is None or endpoints == to)

    processes.wait_for(routed, timeout, f"kube-proxy's rules for {cluster_ip}:{port} (to {to or 'any pod'})",
                       interval=0.1)


class ServiceURL:
    """http://<ClusterIP>:<port> of a Service, used only once its rules exist."""

    def __init__(self, cluster_ip: str, port: int = 8080, pods: set[str] | None = None, timeout: float = 60.0):
        self.cluster_ip, self.port = cluster_ip, port
        self.base = f"http://{cluster_ip}:{port}"
        self.routed_to(pods, timeout)

    def routed_to(self, pods: set[str] | None, timeout: float = 60.0) -> ServiceURL:
        """Wait until kube-proxy routes the Service to exactly `pods` (e.g. after a pod was replaced)."""
        wait_routed(self.cluster_ip, self.port, pods, timeout)
        return self

    def post(self, path: str, body: dict | None = None, **kwargs) -> requests.Response:
        return requests.post(self.base + path, json=body if body is not None else {}, timeout=HTTP_TIMEOUT,
                             **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.base + path, timeout=HTTP_TIMEOUT, **kwargs)


class StoreAdmin:
    """The model store through its Service with the admin token the operator generated (read from its Secret)."""

    def __init__(self, url: ServiceURL, admin_token: str):
        self.url = url
        self.headers = {"Authorization": f"Bearer {admin_token}"}

    def versions(self, model: str) -> dict[int, str]:
        """version -> sha256, as the catalog lists them ({} for a model the store does not have)."""
        answer = self.url.get(f"/v1/models/{model}/versions", headers=self.headers)
        if answer.status_code == 404:
            return {}
        answer.raise_for_status()
        return {v["version"]: v["sha256"] for v in answer.json()["versions"]}

    def artifact_sha256(self, model: str, version: int) -> str:
        """The sha256 of the artifact's bytes as downloaded (not as listed): what a predict function would load."""
        answer = self.url.get(f"/v1/models/{model}/versions/{version}/artifact", headers=self.headers)
        answer.raise_for_status()
        return hashlib.sha256(answer.content).hexdigest()

    def tokens(self) -> requests.Response:
        return self.url.get("/v1/tokens", headers=self.headers)
