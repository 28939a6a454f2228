"""Fixtures for the attacker tests of the operator: the real control plane, a real iris-server as the default
ModelStore, and the operator as the chart's ServiceAccount (never admin)."""

from __future__ import annotations

import uuid

import pytest
from iris_client import ModelStoreClient
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.operator_process import OperatorProcess, install_operator_identity
from tenancy_cluster import (
    ADMIN_TOKEN,
    FUNCTION_NAMESPACE,
    GROUP,
    OPERATOR_NAMESPACE,
    RESYNC_SECONDS,
    STORE,
    VERSION,
    Cluster,
    Store,
)


@pytest.fixture(scope="session")
def operator_identity(control_plane, install_crds):
    install_crds("crds", "hack/crds/openfaas.com_functions.yaml")
    return install_operator_identity(control_plane, OPERATOR_NAMESPACE, FUNCTION_NAMESPACE)


@pytest.fixture(scope="session")
def store(tmp_path_factory, k8s, operator_identity):
    """A real iris-server, the operator's default ModelStore in these tests (it admits every namespace)."""
    data = tmp_path_factory.mktemp("tenancy-store") / "store"
    url, process = start_iris_server(data, admin_token=ADMIN_TOKEN)
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    _replace(lambda: core.delete_namespaced_secret("tenancy-admin", OPERATOR_NAMESPACE))
    core.create_namespaced_secret(OPERATOR_NAMESPACE, {"metadata": {"name": "tenancy-admin"},
                                                       "stringData": {"admin-token": ADMIN_TOKEN}})
    _replace(lambda: custom.delete_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", STORE))
    custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": STORE},
        "spec": {"external": {"url": url, "adminTokenSecretRef": {"name": "tenancy-admin"}}}})
    with ModelStoreClient(url, ADMIN_TOKEN) as admin:
        yield Store(url=url, admin=admin, data=data)
    stop_iris_server(process)


def _replace(delete) -> None:
    try:
        delete()
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    """Extra operator settings for a module's tests (a module overrides this fixture to set caps)."""
    return {}


@pytest.fixture(scope="module")
def operator(control_plane, operator_identity, store, operator_env, tmp_path_factory):
    """One operator per module: it watches every namespace, so it never overlaps with another suite's."""
    process = OperatorProcess(control_plane, operator_identity, log_path=tmp_path_factory.mktemp("op") / "log",
                              env={"MLFUNCTIONS_RESYNC_SECONDS": str(RESYNC_SECONDS),
                                   "MLFUNCTIONS_RETRY_MAX_SECONDS": "8",
                                   "MLFUNCTIONS_DEFAULT_MODEL_STORE": STORE,
                                   "MLFUNCTIONS_CREATE_DEFAULT_MODEL_STORE": "false",
                                   "MLFUNCTIONS_LOG_FORMAT": "text", **operator_env})
    with process:
        yield process


@pytest.fixture
def cluster(k8s, operator) -> Cluster:
    return Cluster(k8s, operator)


@pytest.fixture
def tenants(k8s):
    """tenants("victim", "eve"): fresh namespaces named <prefix>-victim, <prefix>-eve, deleted afterwards."""
    core = client.CoreV1Api(k8s)
    prefix = f"t{uuid.uuid4().hex[:6]}"
    made: list[str] = []

    def make(*roles: str) -> list[str]:
        names = [f"{prefix}-{role}" if role else prefix for role in roles]
        for name in names:
            core.create_namespace({"metadata": {"name": name}})
            made.append(name)
        return names

    yield make
    for name in made:
        _replace(lambda n=name: core.delete_namespace(n))
