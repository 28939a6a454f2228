"""Fixtures and helpers for the operator's tests: golden manifests (unit) and a running operator (integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from iris_client import ModelStoreClient
from kubernetes import client
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.operator_process import OperatorProcess, install_operator_identity
from operator_cluster import (
    ADMIN_TOKEN,
    DEFAULT_STORE,
    FUNCTION_NAMESPACE,
    GROUP,
    OPERATOR_NAMESPACE,
    RESYNC_SECONDS,
    STORE,
    VERSION,
    IrisStore,
    Objects,
)

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

@pytest.fixture(scope="session")
def operator_crds(install_crds):
    return install_crds("crds", "hack/crds/openfaas.com_functions.yaml")


@pytest.fixture(scope="session")
def operator_identity(control_plane, operator_crds):
    return install_operator_identity(control_plane, OPERATOR_NAMESPACE, FUNCTION_NAMESPACE)


@pytest.fixture(scope="session")
def iris_store(tmp_path_factory, k8s, operator_identity):
    data = tmp_path_factory.mktemp("iris") / "store"
    url, process = start_iris_server(data, admin_token=ADMIN_TOKEN)
    client.CoreV1Api(k8s).create_namespaced_secret(OPERATOR_NAMESPACE, {
        "metadata": {"name": "iris-admin"}, "stringData": {"admin-token": ADMIN_TOKEN}})
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": STORE},
        # Not the operator's default store: it admits only the namespaces it names ("*": every test's).
        "spec": {"external": {"url": url, "adminTokenSecretRef": {"name": "iris-admin"}}, "namespaces": ["*"]}})
    with ModelStoreClient(url, ADMIN_TOKEN) as admin:
        yield IrisStore(url=url, name=STORE, admin=admin, log=data.parent / f"{data.name}.log")
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


@pytest.fixture
def objects(k8s, operator) -> Objects:
    return Objects(k8s, operator)
