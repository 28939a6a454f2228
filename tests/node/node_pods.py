"""Pods for the node suite: a spec the way the chart runs containers (uid 65532, read-only root, no privilege
escalation, only /tmp writable), and waiting for a pod to reach a phase, with its logs when it does not."""

from __future__ import annotations

import time

from kubernetes import client

NON_ROOT_UID = 65532


def restricted_pod(name: str, image: str, command: list[str] | None = None,
                   volumes: list[dict] | None = None, mounts: list[dict] | None = None,
                   restart_policy: str = "Never") -> dict:
    container = {
        "name": "main", "image": image, "imagePullPolicy": "Never",
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *(mounts or [])],
    }
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart_policy,
            "securityContext": {"runAsUser": NON_ROOT_UID, "runAsGroup": NON_ROOT_UID, "runAsNonRoot": True},
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}, *(volumes or [])],
        },
    }


def wait_phase(core: client.CoreV1Api, namespace: str, name: str, phases: set[str],
               timeout: float = 120.0) -> client.V1Pod:
    """The pod once its phase is one of `phases` (Running also needs its containers ready)."""
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, namespace)
        ready = all(s.ready for s in pod.status.container_statuses or []) and pod.status.container_statuses
        if pod.status.phase in phases and (pod.status.phase != "Running" or ready):
            return pod
        if pod.status.phase in {"Succeeded", "Failed"} - phases:
            raise AssertionError(f"pod {name} ended {pod.status.phase}:\n{logs(core, namespace, name)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} not {phases} after {timeout:g}s: {pod.status}")
        time.sleep(0.2)


def logs(core: client.CoreV1Api, namespace: str, name: str) -> str:
    return core.read_namespaced_pod_log(name, namespace)
