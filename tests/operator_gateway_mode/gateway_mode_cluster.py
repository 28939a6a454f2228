"""What the gatewayAPI-mode tests share: names, the chart's RBAC rendered for that mode, the restartable local
gateway and admin-side helpers. (A module of its own, not conftest: every test folder has a conftest.)"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas.gateway import process as gateway_process
from mlfunctions_harness.operator_process import CHART, OperatorIdentity, OperatorProcess, helm
from secret_volume import SecretVolume

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

    def secret_volume(self, password: str | None = None) -> SecretVolume:
        """The gateway's basic-auth Secret as the chart mounts it for the operator (the kubelet's layout); the
        gateway's own password unless another is given."""
        user, right = self.gateway.auth
        volume = SecretVolume(self.log_dir / f"gateway-secret-{uuid.uuid4().hex[:6]}")
        volume.write({"basic-auth-user": user, "basic-auth-password": right if password is None else password})
        return volume

    def operator(self, credentials: SecretVolume | None = None, **env: str) -> OperatorProcess:
        """An operator in gatewayAPI mode for OpenFaaS CE, reading the gateway's credentials from files as the
        chart gives them (`credentials`, by default the right ones); `env` overrides its settings."""
        credentials = credentials or self.secret_volume()
        settings = {"MLFUNCTIONS_OPENFAAS_DEPLOY": "gatewayAPI", "MLFUNCTIONS_OPENFAAS_EDITION": "ce",
                    "MLFUNCTIONS_GATEWAY_URL": self.gateway.url,
                    "MLFUNCTIONS_GATEWAY_CREDENTIALS_DIR": str(credentials.path),
                    "MLFUNCTIONS_GATEWAY_TIMEOUT_SECONDS": "3",
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
