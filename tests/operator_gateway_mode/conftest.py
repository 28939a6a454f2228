"""The operator in gatewayAPI mode (OpenFaaS CE) against real components: the kube-apiserver, an iris-server, the
local OpenFaaS gateway (which speaks the gateway's REST API and runs the real train function from functions/), and
the operator as its own ServiceAccount under the chart's RBAC rendered for gatewayAPI mode (no verbs on
openfaas.com Functions)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import rbac
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.operator_process import CHART, OperatorIdentity, OperatorProcess, helm
from mlfunctions_harness.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = REPO_ROOT / "functions" / "stack.yml"
ECHO_DIR = REPO_ROOT / "tests" / "local_openfaas" / "echo_function"
ECHO_IMAGE = "localhost/echo:test"  # other people's functions, filling CE's 15 slots
FUNCTION_NAMESPACE = "openfaas-fn"  # the one namespace OpenFaaS CE serves
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
STORE = "gw-iris"
ADMIN_TOKEN = "gateway-mode-tests-admin-token-0123456789"
GATEWAY_SECRET = "gateway-basic-auth"
RESYNC_SECONDS = 3


def render_gateway_mode_rbac(namespace: str, kube_version: str, release: str) -> list[dict]:
    rendered = subprocess.run(
        [helm(), "template", release, str(CHART), "--namespace", namespace, "--kube-version", kube_version,
         "--set", f"functionNamespace={FUNCTION_NAMESPACE}", "--set", "openfaas.deploy=gatewayAPI",
         "--set", "openfaas.edition=ce", "--set", f"openfaas.gatewaySecret={GATEWAY_SECRET}",
         "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"],
        check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


@dataclass
class Gateway:
    """The local gateway, restartable on the same port and credentials (its state dir keeps them)."""

    port: int
    state_dir: Path
    kubeconfig: Path
    programs: Path
    process: gateway_process.GatewayProcess | None = None

    def start(self) -> None:
        self.process = gateway_process.start(
            self.port, self.state_dir, stack_files=[STACK_FILE], programs=[self.programs],
            kubeconfig=self.kubeconfig, autoscale_interval=0.5,
            extra_args=["--namespace", FUNCTION_NAMESPACE, "--watch-namespace", FUNCTION_NAMESPACE])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return self.process.basic_auth

    def function(self, name: str) -> dict | None:
        response = requests.get(f"{self.url}/system/function/{name}", params={"namespace": FUNCTION_NAMESPACE},
                                auth=self.auth, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def functions(self) -> list[dict]:
        response = requests.get(f"{self.url}/system/functions", params={"namespace": FUNCTION_NAMESPACE},
                                auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()


@dataclass
class Cluster:
    """What the tests share: admin clients, the MLFunctions' namespace, the gateway and the operator's makings."""

    api: client.ApiClient
    namespace: str
    gateway: Gateway
    identity: OperatorIdentity
    control_plane: object
    log_dir: Path

    def operator(self, **env: str) -> OperatorProcess:
        """An operator in gatewayAPI mode for OpenFaaS CE; `env` overrides its settings."""
        user, password = self.gateway.auth
        settings = {"MLFUNCTIONS_OPENFAAS_DEPLOY": "gatewayAPI", "MLFUNCTIONS_OPENFAAS_EDITION": "ce",
                    "MLFUNCTIONS_GATEWAY_URL": self.gateway.url, "MLFUNCTIONS_GATEWAY_USERNAME": user,
                    "MLFUNCTIONS_GATEWAY_PASSWORD": password, "MLFUNCTIONS_GATEWAY_TIMEOUT_SECONDS": "3",
                    "MLFUNCTIONS_RESYNC_SECONDS": str(RESYNC_SECONDS), "MLFUNCTIONS_RETRY_MAX_SECONDS": "4",
                    # No default store: an MLFunction another suite left behind (the operator watches every
                    # namespace) is Stalled on it, never deployed into this suite's 15 CE slots.
                    "MLFUNCTIONS_DEFAULT_MODEL_STORE": "none-by-default",
                    "MLFUNCTIONS_CREATE_DEFAULT_MODEL_STORE": "false", "MLFUNCTIONS_LOG_FORMAT": "text", **env}
        return OperatorProcess(self.control_plane, self.identity, env=settings,
                               log_path=self.log_dir / f"operator-{uuid.uuid4().hex[:6]}.log")

    def create_mlf(self, name: str, spec: dict) -> None:
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "mlfunctions",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": name}, "spec": spec})

    def mlf(self, name: str) -> dict | None:
        try:
            return client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "mlfunctions", name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_mlf(self, name: str, patch: dict) -> None:
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "mlfunctions", name, patch,
            _content_type="application/merge-patch+json")

    def delete_mlf(self, name: str) -> None:
        client.CustomObjectsApi(self.api).delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "mlfunctions", name)


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
