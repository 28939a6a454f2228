"""Finding what the operator and faas-netes made for an MLFunction on the node: its Function, the Deployment's one
running pod, the Service in front of it, the credential Secret; and waiting for MLFunctions to settle."""

from __future__ import annotations

import base64

from chart_release import Kubectl
from cluster_traffic import ServiceURL
from kubernetes import client
from mlfunctions_harness import processes
from mlfunctions_operator.naming import invoke_secret_name

TOKEN_KEY = "model-store-token"  # the credential Secret's key (and the file name under /var/openfaas/secrets)


def invoke_headers(core: client.CoreV1Api, namespace: str, mlfunction: str) -> dict[str, str]:
    """What a caller of a train function sends: the credential in the MLFunction's own invoke Secret."""
    token = secret_value(core, namespace, invoke_secret_name(mlfunction), "token")
    return {"Authorization": f"Bearer {token}"}


def running_pod(core: client.CoreV1Api, namespace: str, selector: str, timeout: float = 180.0) -> client.V1Pod:
    """The one pod matching `selector` that is Ready and not being deleted (waits for it, and for any other to go)."""
    def one_ready() -> client.V1Pod | None:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        if len(pods) != 1 or pods[0].metadata.deletion_timestamp:
            return None
        conditions = {c.type: c.status for c in pods[0].status.conditions or []}
        return pods[0] if conditions.get("Ready") == "True" else None

    return processes.wait_for(one_ready, timeout, f"one Ready pod {selector} in {namespace}", interval=0.2)


def function_pod(core: client.CoreV1Api, function_namespace: str, function: str) -> client.V1Pod:
    return running_pod(core, function_namespace, f"faas_function={function}")


def function_service(core: client.CoreV1Api, function_namespace: str, function: str) -> ServiceURL:
    """The function's Service, once kube-proxy routes it to exactly its running pod."""
    pod = function_pod(core, function_namespace, function)
    service = core.read_namespaced_service(function, function_namespace)
    return ServiceURL(service.spec.cluster_ip, 8080, pods={pod.status.pod_ip})


def secret_value(core: client.CoreV1Api, namespace: str, name: str, key: str) -> str:
    return base64.b64decode(core.read_namespaced_secret(name, namespace).data[key]).decode()


def wait_all_ready(kubectl: Kubectl, namespace: str, timeout: float = 180.0) -> list[dict]:
    """Every MLFunction in `namespace` Ready for its current generation (none left wrong), returned."""
    def settled() -> list[dict] | None:
        items = kubectl.json("get", "mlfunctions", "-n", namespace)["items"]
        for item in items:
            status = item.get("status") or {}
            ready = {c["type"]: c for c in status.get("conditions", [])}.get("Ready", {})
            if (ready.get("status") != "True" or status.get("observedGeneration") != item["metadata"]["generation"]
                    or ready.get("observedGeneration") != item["metadata"]["generation"]):
                return None
        return items

    return processes.wait_for(settled, timeout, f"every MLFunction in {namespace} to be Ready", interval=0.5)
