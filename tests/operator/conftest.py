"""Fixtures and helpers for the operator's tests: golden manifests (unit) and a running operator (integration)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from iris_client import ModelStoreClient
from iris_server.testing import start_iris_server, stop_iris_server
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_dev.operator_process import OperatorProcess, install_operator_identity

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def golden():
    """golden(name, documents): compare manifests with tests/operator/golden/<name>.yaml.

    UPDATE_GOLDEN=1 rewrites the file instead (review the diff before committing it).
    """

    def check(name: str, documents: list[dict]) -> None:
        path = GOLDEN / f"{name}.yaml"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(yaml.safe_dump_all(documents, sort_keys=True, width=120))
        assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
        expected = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents == expected, f"manifests differ from {path} (UPDATE_GOLDEN=1 rewrites it)"

    return check


# -- integration: the real control plane, a real iris-server, the operator as its own ServiceAccount ----------

OPERATOR_NAMESPACE = "mlfunctions-system"
FUNCTION_NAMESPACE = "openfaas-fn"
ADMIN_TOKEN = "operator-tests-admin-token-0123456789"
STORE = "iris"           # the external ModelStore backed by a real iris-server
DEFAULT_STORE = "auto"   # the operator's default store: created on demand, never running (no kubelet)
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
RESYNC_SECONDS = 3


@pytest.fixture(scope="session")
def operator_crds(install_crds):
    return install_crds("crds", "hack/crds/openfaas.com_functions.yaml")


@pytest.fixture(scope="session")
def operator_identity(control_plane, operator_crds):
    return install_operator_identity(control_plane, OPERATOR_NAMESPACE, FUNCTION_NAMESPACE)


@dataclass
class IrisStore:
    url: str
    name: str
    admin: ModelStoreClient

    def live_tokens(self, namespace: str, name: str) -> list[str]:
        """Ids of unrevoked tokens the operator issued for MLFunction namespace/name."""
        description = f"mlfunctions-operator: MLFunction {namespace}/{name}"
        return [t["id"] for t in self.admin.list_tokens()
                if t["description"] == description and not t["revoked"]]


@pytest.fixture(scope="session")
def iris_store(tmp_path_factory, k8s, operator_identity):
    url, process = start_iris_server(tmp_path_factory.mktemp("iris") / "store", admin_token=ADMIN_TOKEN)
    client.CoreV1Api(k8s).create_namespaced_secret(OPERATOR_NAMESPACE, {
        "metadata": {"name": "iris-admin"}, "stringData": {"admin-token": ADMIN_TOKEN}})
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": STORE},
        "spec": {"external": {"url": url, "adminTokenSecretRef": {"name": "iris-admin"}}}})
    with ModelStoreClient(url, ADMIN_TOKEN) as admin:
        yield IrisStore(url=url, name=STORE, admin=admin)
    stop_iris_server(process)


@pytest.fixture(scope="module")
def operator(control_plane, operator_identity, iris_store, tmp_path_factory):
    """The operator, running as the chart's ServiceAccount, resyncing every few seconds. One per test module, so it
    never overlaps with operators other suites start (the operator watches every namespace)."""
    process = OperatorProcess(control_plane, operator_identity, log_path=tmp_path_factory.mktemp("op") / "log",
                              env={"MLFUNCTIONS_RESYNC_SECONDS": str(RESYNC_SECONDS),
                                   "MLFUNCTIONS_RETRY_MAX_SECONDS": "8",
                                   "MLFUNCTIONS_ORPHAN_TOKEN_GRACE_SECONDS": "2",
                                   "MLFUNCTIONS_DEFAULT_MODEL_STORE": DEFAULT_STORE,
                                   "MLFUNCTIONS_LOG_FORMAT": "text"})
    with process:
        yield process


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


def condition(obj: dict | None, type_: str) -> dict:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


@pytest.fixture
def objects(k8s, operator) -> Objects:
    return Objects(k8s, operator)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a model store that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
