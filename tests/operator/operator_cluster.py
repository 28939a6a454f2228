"""What the operator's integration tests share: the test cluster's names, admin-side reads and writes, a view of
the model store's tokens. (A module of its own, not conftest: every test folder has a conftest.)"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from iris_client import ModelStoreClient
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_harness.operator_process import OperatorProcess
from mlfunctions_operator.naming import function_name

OPERATOR_NAMESPACE = "mlfunctions-system"
FUNCTION_NAMESPACE = "openfaas-fn"
ADMIN_TOKEN = "operator-tests-admin-token-0123456789"
STORE = "iris"           # the external ModelStore backed by a real iris-server
DEFAULT_STORE = "auto"   # the operator's default store: created on demand, never running (no kubelet)
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
RESYNC_SECONDS = 3


@dataclass
class IrisStore:
    url: str
    name: str
    admin: ModelStoreClient
    log: Path  # the server's log: one JSON line per request it answered

    def requests(self, method: str, path: str) -> int:
        """How many `method path` requests the store has answered so far."""
        count = 0
        for line in self.log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            count += entry.get("message") == "request" and entry.get("method") == method and \
                entry.get("path") == path
        return count

    def publish(self, model: str, namespace: str, artifact: bytes) -> int:
        """Upload a version as the store's admin, for `namespace`'s MLFunctions: a model the admin uploads belongs
        to nobody until it is claimed, and namespaced tokens may not use it before."""
        self.admin.claim(model, namespace)
        return self.admin.upload(model, artifact, format="onnx").version

    def live_tokens(self, namespace: str, name: str) -> list[str]:
        """Ids of unrevoked tokens the operator issued for MLFunction namespace/name."""
        description = f"mlfunctions-operator: MLFunction {namespace}/{name}"
        return [t["id"] for t in self.admin.list_tokens()
                if t["description"] == description and not t["revoked"]]


class Objects:
    """Admin-side reads and writes for the tests (the operator itself never runs as admin)."""

    def __init__(self, api: client.ApiClient, operator: OperatorProcess):
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.operator = operator

    # MLFunctions
    def create_mlf(self, namespace: str, name: str, spec: dict) -> dict:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": name}, "spec": spec})

    def mlf(self, namespace: str, name: str) -> dict | None:
        return self._get(lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions",
                                                                          name))

    def patch_mlf(self, namespace: str, name: str, patch: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", name, patch,
                                                          _content_type="application/merge-patch+json")

    def delete_mlf(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", name)

    # OpenFaaS Functions
    def function(self, name: str) -> dict | None:
        return self._get(lambda: self.custom.get_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE,
                                                                          "functions", name))

    def report_function_status(self, name: str, ready: bool, replicas: int, available: int) -> None:
        """Write the Function's status as OpenFaaS would."""
        fn = self.function(name)
        now = "2026-01-01T00:00:00Z"
        conditions = [{"type": "Ready", "status": str(ready), "reason": "Deployed" if ready else "Pending",
                       "lastTransitionTime": now},
                      {"type": "Healthy", "status": str(available > 0), "reason": "Replicas",
                       "lastTransitionTime": now}]
        self.custom.patch_namespaced_custom_object_status(
            "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", name,
            {"status": {"observedGeneration": fn["metadata"]["generation"], "replicas": replicas,
                        "availableReplicas": available, "unavailableReplicas": replicas - available,
                        "conditions": conditions}},
            _content_type="application/merge-patch+json")

    def secret(self, namespace: str, name: str):
        return self._get(lambda: self.core.read_namespaced_secret(name, namespace))

    def _get(self, read):
        try:
            result = read()
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return result

    def wait(self, check, timeout: float = 20.0, what: str = "condition"):
        """Poll `check()` until it returns something truthy; fail with the operator's log if it never does."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}\n"
                             f"--- operator log ---\n{self.operator.log_tail()}")


def fn_name(namespace: str, name: str) -> str:
    """The Function of MLFunction namespace/name, named as the operator names it."""
    return function_name(namespace, name)


def credential_secret(namespace: str, name: str) -> str:
    return f"{fn_name(namespace, name)}-model-store"


def condition(obj: dict | None, type_: str) -> dict:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}
