"""What the operator's attacker tests share: names, the admin's reads and writes, waits on conditions, the model
store as its admin sees it. (A module of its own, not conftest: every test folder has a conftest.)"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path

from iris_client import ModelStoreClient, NotFound
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_harness.operator_process import OperatorProcess
from mlfunctions_operator.naming import function_name

OPERATOR_NAMESPACE = "mlfunctions-system"
FUNCTION_NAMESPACE = "openfaas-fn"
ADMIN_TOKEN = "tenancy-operator-tests-admin-token-0123456789"
STORE = "tenancy"            # the operator's default store here: an external, real iris-server
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
RESYNC_SECONDS = 3


def fn_name(namespace: str, name: str) -> str:
    return function_name(namespace, name)


def credential_secret(namespace: str, name: str) -> str:
    return f"{fn_name(namespace, name)}-model-store"


def condition(obj: dict | None, type_: str) -> dict:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


def train_spec(model: str, **training) -> dict:
    return {"task": "train", "model": {"name": model},
            "training": {"dataset": "iris", "estimator": "LogisticRegression", **training}}


def predict_spec(model: str, **extra) -> dict:
    return {"task": "predict", "model": {"name": model}, **extra}


@dataclass
class Store:
    """The real iris-server behind the default ModelStore, as its admin sees it."""

    url: str
    admin: ModelStoreClient
    data: Path

    def live_tokens(self, namespace: str, name: str) -> list[str]:
        description = f"mlfunctions-operator: MLFunction {namespace}/{name}"
        return [t["id"] for t in self.admin.list_tokens() if t["description"] == description and not t["revoked"]]

    def versions(self, model: str) -> list[tuple[int, str]]:
        """(version, sha256) of every version of the model: what an attack must leave as it is."""
        try:
            return [(v.version, v.sha256) for v in self.admin.list_versions(model)]
        except NotFound:
            return []


class Cluster:
    """Admin-side reads and writes (the operator itself never runs as admin)."""

    def __init__(self, api: client.ApiClient, operator: OperatorProcess):
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.operator = operator

    def create_mlf(self, namespace: str, name: str, spec: dict) -> dict:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": name}, "spec": spec})

    def mlf(self, namespace: str, name: str) -> dict | None:
        return self.get(lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions",
                                                                         name))

    def patch_mlf(self, namespace: str, name: str, patch: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", name, patch,
                                                          _content_type="application/merge-patch+json")

    def delete_mlf(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", name)

    def modelstore(self, name: str, spec: dict) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": name}, "spec": spec})

    def patch_modelstore(self, name: str, patch: dict) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", name, patch,
                                                   _content_type="application/merge-patch+json")

    def function(self, name: str) -> dict | None:
        return self.get(lambda: self.custom.get_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE,
                                                                         "functions", name))

    def report_ready(self, name: str) -> None:
        """Write the Function's status as OpenFaaS would once it serves."""
        fn = self.function(name)
        now = "2026-01-01T00:00:00Z"
        self.custom.patch_namespaced_custom_object_status(
            "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", name,
            {"status": {"observedGeneration": fn["metadata"]["generation"], "replicas": 1, "availableReplicas": 1,
                        "conditions": [{"type": "Ready", "status": "True", "reason": "Deployed",
                                        "lastTransitionTime": now}]}},
            _content_type="application/merge-patch+json")

    def secret(self, namespace: str, name: str):
        return self.get(lambda: self.core.read_namespaced_secret(name, namespace))

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        return base64.b64decode(self.secret(namespace, name).data[key]).decode()

    def owned_in_function_namespace(self, namespace: str, name: str) -> list[str]:
        """Every object in the function namespace labelled as MLFunction namespace/name's."""
        selector = f"mlfunctions.dev/owner-namespace={namespace},mlfunctions.dev/owner-name={name}"
        found = [f"Function {f['metadata']['name']}" for f in self.custom.list_namespaced_custom_object(
            "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", label_selector=selector)["items"]]
        for kind, lister in (("Secret", self.core.list_namespaced_secret),
                             ("ServiceAccount", self.core.list_namespaced_service_account),
                             ("Role", self.rbac.list_namespaced_role),
                             ("RoleBinding", self.rbac.list_namespaced_role_binding)):
            found += [f"{kind} {o.metadata.name}" for o in lister(FUNCTION_NAMESPACE, label_selector=selector).items]
        return found

    def events(self, namespace: str, name: str) -> list[str]:
        """Reasons of the object's Events (kopf posts them from a queue: wait for one, do not expect it)."""
        return [e.reason for e in self.core.list_namespaced_event(namespace).items if e.involved_object.name == name]

    @staticmethod
    def get(read):
        try:
            return read()
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def wait(self, check, timeout: float = 30.0, what: str = "condition"):
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

    def wait_condition(self, namespace: str, name: str, type_: str, reason: str, timeout: float = 30.0) -> dict:
        return self.wait(lambda: (c := condition(self.mlf(namespace, name), type_)) and c.get("status") == "True"
                         and c.get("reason") == reason and c, timeout, f"{namespace}/{name} {type_}={reason}")

    def another_pass(self, namespace: str, name: str) -> dict:
        """Make the operator reconcile the MLFunction once more (a harmless spec change) and wait until its status
        says that pass is done: what must not happen is checked after a pass that would have done it."""
        target = int(time.monotonic_ns() % 1000) + 1
        generation = self.patch_mlf(namespace, name, {"spec": {"scaling": {"target": target}}})["metadata"][
            "generation"]
        return self.wait(lambda: (m := self.mlf(namespace, name)) and
                         condition(m, "Ready").get("observedGeneration") == generation and m,
                         what=f"a pass over generation {generation} of {namespace}/{name}")
