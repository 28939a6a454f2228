"""LocalStack: `make up`'s components, each started by a method and stopped in reverse order. The `up` command
(run.py) calls them in order; tests call them on their session's control plane, with namespaces of their own."""

from __future__ import annotations

import base64
import os
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas.gateway import auth as gateway_auth
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import rbac
from mlfunctions_harness import crds, processes, prometheus

from mlfunctions_stack import console_process, prometheus_process, state_files
from mlfunctions_stack.commands import REPO_ROOT, StackError, helm, port_free, run

CRD_PATHS = [REPO_ROOT / "crds", REPO_ROOT / "hack" / "crds" / "openfaas.com_functions.yaml"]
CHART = REPO_ROOT / "charts" / "mlfunctions"
STACK_FILE = REPO_ROOT / "functions" / "stack.yml"
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"


class LocalStack:
    """The stack's components, started in order and stopped in reverse (an ExitStack owns each one)."""

    def __init__(self, cluster, state_dir: Path, *, gateway_port: int = 8080, store_port: int = 8081,
                 operator_namespace: str = "mlfunctions-system", function_namespace: str = "openfaas-fn",
                 release: str = "mlfunctions", pool_size: int = 1):
        self.cluster, self.state_dir = cluster, state_dir
        self.gateway_port, self.store_port = gateway_port, store_port
        self.operator_namespace, self.function_namespace = operator_namespace, function_namespace
        self.release, self.pool_size = release, pool_size
        self._exit = ExitStack()
        self.api = cluster.api_client()
        self._exit.callback(self.api.close)

    def close(self) -> None:
        self._exit.close()

    # ---- the pieces, in start order ----

    def install(self) -> None:
        crds.install(self.api, CRD_PATHS)
        for namespace in (self.operator_namespace, self.function_namespace):
            try:
                client.CoreV1Api(self.api).create_namespace({"metadata": {"name": namespace}})
            except ApiException as error:
                if error.status != 409:
                    raise

    def start_model_store(self) -> tuple[str, Path]:
        """iris-server on 127.0.0.1:`store_port`; its data and admin token persist in the state dir."""
        folder = self.state_dir / "model-store"
        token_file = folder / "admin-token"
        state_files.secret(token_file)
        port_free(self.store_port, "the model store", "--store-port")
        env = {**os.environ, "IRIS_DATA_DIR": str(folder / "data"), "IRIS_ADMIN_TOKEN_FILE": str(token_file),
               "IRIS_HOST": "127.0.0.1", "IRIS_PORT": str(self.store_port)}
        env.pop("IRIS_ADMIN_TOKEN", None)
        process = processes.spawn([sys.executable, "-m", "iris_server"], folder / "iris-server.log", env=env)
        self._exit.callback(processes.stop, process)
        url = f"http://127.0.0.1:{self.store_port}"
        processes.wait_healthy(f"{url}/readyz", process, "iris-server", folder / "iris-server.log")
        return url, token_file

    def install_operator_rbac(self, store_url: str, token_file: Path) -> str:
        """The chart's ServiceAccount, RBAC and default (external) ModelStore; returns the ServiceAccount's name."""
        core = client.CoreV1Api(self.api)
        secret = {"metadata": {"name": "model-store-admin"}, "stringData": {"admin-token": token_file.read_text()}}
        try:
            core.create_namespaced_secret(self.operator_namespace, secret)
        except ApiException as error:
            if error.status != 409:
                raise
            core.replace_namespaced_secret("model-store-admin", self.operator_namespace, secret)
        rendered = run([
            helm(), "template", self.release, str(CHART), "--namespace", self.operator_namespace,
            "--kube-version", self.cluster.version,
            "--set", f"functionNamespace={self.function_namespace}",
            "--set", f"functions.gatewayURL=http://127.0.0.1:{self.gateway_port}",
            "--set", f"modelStores.default.external.url={store_url}",
            "--set", "modelStores.default.external.adminTokenSecretRef.name=model-store-admin",
            "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml",
            "--show-only", "templates/modelstore.yaml",
        ])
        self.kubectl("apply", "-f", "-", stdin=rendered)
        accounts = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "ServiceAccount"]
        if not accounts:
            raise StackError("the chart rendered no ServiceAccount for the operator")
        return accounts[0]["metadata"]["name"]

    def start_operator(self, service_account: str) -> None:
        kubeconfig = self.cluster.service_account_kubeconfig(
            self.operator_namespace, service_account, self.state_dir / "operator.kubeconfig")
        health_port = processes.free_port()
        self.operator_metrics = f"127.0.0.1:{health_port}"  # /metrics is served next to /healthz
        env = {**os.environ, "KUBECONFIG": str(kubeconfig),
               "MLFUNCTIONS_OPERATOR_NAMESPACE": self.operator_namespace,
               "MLFUNCTIONS_FUNCTION_NAMESPACE": self.function_namespace,
               "MLFUNCTIONS_GATEWAY_URL": f"http://127.0.0.1:{self.gateway_port}",
               "MLFUNCTIONS_HEALTH_ADDRESS": f"127.0.0.1:{health_port}",
               "MLFUNCTIONS_LOG_FORMAT": "json"}
        log_path = self.state_dir / "operator.log"
        process = processes.spawn([sys.executable, "-m", "mlfunctions_operator"], log_path, env=env)
        self._exit.callback(processes.stop, process)
        processes.wait_healthy(f"http://127.0.0.1:{health_port}/healthz", process, "the operator", log_path)

    def start_gateway(self) -> gateway_process.GatewayProcess:
        """The local OpenFaaS, acting as a ServiceAccount that may do what OpenFaaS's controller does."""
        rbac.ensure_identity(self.api, self.function_namespace, "local-openfaas")
        kubeconfig = self.cluster.service_account_kubeconfig(
            self.function_namespace, "local-openfaas", self.state_dir / "gateway.kubeconfig")
        port_free(self.gateway_port, "the gateway", "--gateway-port")
        _drop_unusable_gateway_auth(self.state_dir / "faas" / "auth")
        gateway = gateway_process.start(
            self.gateway_port, self.state_dir / "faas", stack_files=[STACK_FILE], kubeconfig=kubeconfig,
            pool_size=self.pool_size, extra_args=["--namespace", self.function_namespace])
        self._exit.callback(gateway.stop)
        self.gateway_process = gateway
        return gateway

    def start_console(self, store_url: str, admin_token_file: Path, port: int,
                      train_triggers: tuple[tuple[str, str], ...] = ()) -> tuple[str, str, Path]:
        """The web console on 127.0.0.1:`port` (console_process.start); returns (url, user, password file)."""
        process, *console = console_process.start(self, store_url, admin_token_file, port, train_triggers)
        self._exit.callback(processes.stop, process)
        return tuple(console)

    def start_prometheus(self, port: int | None = None) -> prometheus.PrometheusProcess:
        """Prometheus scraping the stack (prometheus_process.start); after start_model_store, start_operator
        and start_gateway."""
        metrics = prometheus_process.start(self.state_dir, self.operator_metrics, self.gateway_process,
                                           self.store_port, port)
        self._exit.callback(metrics.stop)
        return metrics

    # ---- using it ----

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return run([self.cluster.kubectl, "--kubeconfig", str(self.cluster.kubeconfig), *args], stdin)

    def apply(self, manifests: list[Path]) -> list[dict]:
        """kubectl apply the files; returns the MLFunctions among them."""
        self.kubectl("apply", *[arg for path in manifests for arg in ("-f", str(path))])
        return [doc for path in manifests for doc in yaml.safe_load_all(path.read_text())
                if doc and doc.get("kind") == "MLFunction"]

    def wait_ready(self, mlfunction: dict, timeout: float = 300.0, settle_on: tuple[str, ...] = ()) -> dict:
        """The MLFunction once it is Ready=True, or not Ready for a reason in `settle_on` (a wait that will not
        end by itself, such as ModelNotFound); StackError with its conditions if neither comes in time."""
        meta = mlfunction["metadata"]
        objects = client.CustomObjectsApi(self.api)
        current: dict = {}

        def ready() -> dict | None:
            nonlocal current
            current = objects.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], "mlfunctions",
                                                           meta["name"])
            status = current.get("status") or {}
            is_ready = any(c["type"] == "Ready" and (c["status"] == "True" or c.get("reason") in settle_on)
                           for c in status.get("conditions", []))
            current_generation = status.get("observedGeneration") == current["metadata"]["generation"]
            return current if is_ready and current_generation else None

        try:
            return processes.wait_for(ready, timeout, f"MLFunction {meta['name']} to be Ready", interval=0.2)
        except TimeoutError:
            conditions = (current.get("status") or {}).get("conditions", [])
            raise StackError(f"MLFunction {meta['namespace']}/{meta['name']} not Ready after {timeout:.0f}s: "
                             f"{conditions}; see {self.state_dir}/operator.log and {self.state_dir}/faas/, or start "
                             "from scratch: `make up FRESH=1`") from None

    def invoke(self, mlfunction: dict, body: str, timeout: float = 600.0) -> requests.Response:
        """POST to the function, as a caller with its invoke credential when it has one (train functions)."""
        function = mlfunction["status"]["function"]
        url = f"http://127.0.0.1:{self.gateway_port}/function/{function['name']}.{function['namespace']}"
        headers = {"Content-Type": "application/json"}
        token = self.invoke_token(mlfunction)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(url, data=body, headers=headers, timeout=timeout)

    def invoke_token(self, mlfunction: dict) -> str | None:
        """The token in the MLFunction's invoke Secret (`<name>-invoke`, key `token`), or None without one."""
        meta = mlfunction["metadata"]
        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(f"{meta['name']}-invoke", meta["namespace"])
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        encoded = (secret.data or {}).get("token")
        return base64.b64decode(encoded).decode() if encoded else None


def _drop_unusable_gateway_auth(folder: Path) -> None:
    """A start killed while the gateway's credentials were first written leaves an empty file, which the gateway
    refuses: such a folder is removed, so the gateway makes a new password (printed with the rest)."""
    try:
        gateway_auth.load(folder)
    except FileNotFoundError:
        if folder.exists():
            shutil.rmtree(folder)
    except ValueError:
        shutil.rmtree(folder)
