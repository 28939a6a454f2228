"""The operator in gatewayAPI mode (OpenFaaS CE) against real components: the kube-apiserver, an iris-server, the
local OpenFaaS gateway (which speaks the gateway's REST API and runs the real train function from functions/), and
the operator as its own ServiceAccount under the chart's RBAC rendered for gatewayAPI mode (no verbs on
openfaas.com Functions)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import yaml
from gateway_mode_cluster import (
    ADMIN_TOKEN,
    ECHO_DIR,
    ECHO_IMAGE,
    FUNCTION_NAMESPACE,
    GROUP,
    REPO_ROOT,
    STORE,
    VERSION,
    Cluster,
    Gateway,
    render_gateway_mode_rbac,
)
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas import funcenv
from local_openfaas.runtime import rbac
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.operator_process import OperatorIdentity
from mlfunctions_harness.processes import free_port, wait_for


@pytest.fixture(scope="module")
def cluster(control_plane, k8s, install_crds, tmp_path_factory):
    # The gateway's own Function resources are its implementation (faas-netes-shaped); the operator never
    # touches them (its RBAC has no verbs on them).
    install_crds("crds", "hack/crds/openfaas.com_functions.yaml")
    core = client.CoreV1Api(k8s)
    suffix = uuid.uuid4().hex[:6]
    operator_namespace, namespace = f"gw-sys-{suffix}", f"gw-{suffix}"
    for name in (operator_namespace, namespace, FUNCTION_NAMESPACE):
        try:
            core.create_namespace({"metadata": {"name": name}})
        except ApiException as error:
            if error.status != 409:
                raise
    # CE serves only openfaas-fn, which every operator suite of this session shares. Functions earlier suites left
    # there (their MLFunctions' namespaces deleted after their operator stopped) would count against CE's 15 and
    # be listed by this suite's gateway: the suite starts from an empty function namespace.
    custom = client.CustomObjectsApi(k8s)
    custom.delete_collection_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE, "functions")
    wait_for(lambda: not custom.list_namespaced_custom_object(
        "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions")["items"], timeout=60,
        what=f"no Functions left in {FUNCTION_NAMESPACE}")
    documents = render_gateway_mode_rbac(operator_namespace, control_plane.version, f"gw{suffix}")
    subprocess.run([control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig), "apply", "-f", "-"],
                   input=yaml.safe_dump_all(documents), check=True, capture_output=True, text=True)
    account = next(d["metadata"]["name"] for d in documents if d["kind"] == "ServiceAccount")
    identity = OperatorIdentity(namespace=operator_namespace, service_account=account,
                                function_namespace=FUNCTION_NAMESPACE)

    base = tmp_path_factory.mktemp("gateway-mode")
    data = base / "iris" / "store"
    store_url, store_process = start_iris_server(data, admin_token=ADMIN_TOKEN)
    core.create_namespaced_secret(operator_namespace, {"metadata": {"name": "iris-admin"},
                                                       "stringData": {"admin-token": ADMIN_TOKEN}})
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(GROUP, VERSION, operator_namespace, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": STORE},
        "spec": {"external": {"url": store_url, "adminTokenSecretRef": {"name": "iris-admin"}},
                 "namespaces": ["*"]}})

    funcenv.function_python(REPO_ROOT / "functions" / "train")
    rbac.ensure_identity(k8s, FUNCTION_NAMESPACE, "local-openfaas")
    kubeconfig = control_plane.service_account_kubeconfig(FUNCTION_NAMESPACE, "local-openfaas",
                                                          base / "gateway.kubeconfig")
    programs = base / "programs.yaml"
    programs.write_text(yaml.safe_dump({ECHO_IMAGE: {"python": sys.executable, "argv": [str(ECHO_DIR / "index.py")],
                                                     "cwd": str(ECHO_DIR)}}))
    gateway = Gateway(free_port(), base / "gateway", kubeconfig, programs)
    gateway.start()
    try:
        yield Cluster(k8s, namespace, gateway, identity, control_plane, base)
    finally:
        gateway.stop()
        stop_iris_server(store_process)
        for name in (namespace, operator_namespace):
            core.delete_namespace(name)
