"""`make up`: the whole mlfunctions stack on this machine, no cluster and no container engine needed.

    python -m mlfunctions_stack up [--gateway-port 8080] [--store-port 8081] [--console-port 8088]
                                   [--prometheus [--prometheus-port 9090]]   (or PROMETHEUS=1 make up)

It starts a real control plane (etcd, kube-apiserver, kube-controller-manager), installs the CRDs, runs a model
store (iris-server, referenced by an external ModelStore), the operator (as its ServiceAccount, with the Helm
chart's RBAC), and the local OpenFaaS (runtime + gateway); then applies the iris examples, trains iris, starts
the web console (console/, on 127.0.0.1:8088, as its own ServiceAccount) and prints what to try. Ctrl-C stops
everything. State lives in .stack/: the cluster is new on every start (re-applying is a matter of seconds),
while the models, the gateway's password and what the warm pools learned are kept.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from mlfunctions_harness import controlplane, crds, processes, prometheus
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import rbac
from local_openfaas.runtime.programs import stack_images

log = logging.getLogger("mlfunctions_stack")

REPO_ROOT = Path(__file__).resolve().parents[3]
STATE_DIR = REPO_ROOT / ".stack"
CRD_PATHS = [REPO_ROOT / "crds", REPO_ROOT / "hack" / "crds" / "openfaas.com_functions.yaml"]
CHART = REPO_ROOT / "charts" / "mlfunctions"
STACK_FILE = REPO_ROOT / "functions" / "stack.yml"
EXAMPLES = REPO_ROOT / "examples"
# The examples `up` applies: the iris ones. modelstore.yaml deploys an iris-server Pod, which needs a kubelet;
# the nightly retrain needs the cron-connector; digits is left for the reader to apply.
TRAIN_EXAMPLES = ("namespace.yaml", "iris-train.yaml")
PREDICT_EXAMPLES = ("iris-predict.yaml", "iris-predict-scale-to-zero.yaml")
# What the console may train (their invoke credentials): the examples' train functions.
CONSOLE_TRAIN_TRIGGERS = (("data-science", "iris-train"), ("data-science", "digits-train"))
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"
SAMPLE = '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


class StackError(RuntimeError):
    pass


@dataclass
class Endpoints:
    kubeconfig: Path
    kubectl: str
    gateway: gateway_process.GatewayProcess
    store_url: str
    store_admin_token: Path


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
        if not token_file.exists():
            folder.mkdir(parents=True, exist_ok=True)
            token_file.touch(mode=0o600)
            token_file.write_text(secrets.token_urlsafe(32))
        _port_free(self.store_port, "the model store", "--store-port")
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
        rendered = _run([
            _helm(), "template", self.release, str(CHART), "--namespace", self.operator_namespace,
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
        _port_free(self.gateway_port, "the gateway", "--gateway-port")
        gateway = gateway_process.start(
            self.gateway_port, self.state_dir / "faas", stack_files=[STACK_FILE], kubeconfig=kubeconfig,
            pool_size=self.pool_size, extra_args=["--namespace", self.function_namespace])
        self._exit.callback(gateway.stop)
        self.gateway_process = gateway
        return gateway

    def start_console(self, store_url: str, admin_token_file: Path, port: int,
                      train_triggers: tuple[tuple[str, str], ...] = ()) -> tuple[str, str, Path]:
        """The web console (console/) on 127.0.0.1:`port`, as its own ServiceAccount under the chart's console
        RBAC, with a read-only store token; returns (url, user, password file). `train_triggers`:
        (namespace, MLFunction) pairs it may train, whose namespaces must exist."""
        folder = self.state_dir / "console"
        folder.mkdir(parents=True, exist_ok=True)
        password_file, token_file = folder / "password", folder / "store-token"
        if not password_file.exists():
            password_file.touch(mode=0o600)
            password_file.write_text(secrets.token_urlsafe(18))
        if not token_file.exists() or requests.get(f"{store_url}/v1/whoami", timeout=10, headers={
                "Authorization": f"Bearer {token_file.read_text().strip()}"}).status_code != 200:
            minted = requests.post(f"{store_url}/v1/tokens", timeout=10, json={
                "models": ["*"], "rights": ["read"], "description": "console (make up)"},
                headers={"Authorization": f"Bearer {admin_token_file.read_text().strip()}"})
            if minted.status_code != 201:
                raise StackError(f"the store refused a console token: {minted.status_code} {minted.text}")
            token_file.touch(mode=0o600)
            token_file.write_text(minted.json()["token"])
        triggers = [arg for i, (namespace, name) in enumerate(train_triggers) for arg in (
            "--set", f"console.trainTriggers[{i}].namespace={namespace}",
            "--set", f"console.trainTriggers[{i}].mlfunction={name}")]
        rendered = _run([_helm(), "template", self.release, str(CHART), "--namespace",
                         self.operator_namespace, "--kube-version", self.cluster.version,
                         "--set", "console.enabled=true",
                         "--set", f"functionNamespace={self.function_namespace}", *triggers,
                         "--show-only", "templates/console-serviceaccount.yaml",
                         "--show-only", "templates/console-rbac.yaml"])
        self.kubectl("apply", "-f", "-", stdin=rendered)
        account = next(d for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "ServiceAccount")
        kubeconfig = self.cluster.service_account_kubeconfig(
            self.operator_namespace, account["metadata"]["name"], folder / "console.kubeconfig")
        _port_free(port, "the console", "--console-port")
        env = {**os.environ, "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port),
               "CONSOLE_USERNAME": "admin", "CONSOLE_PASSWORD_FILE": str(password_file),
               "CONSOLE_KUBECONFIG": str(kubeconfig),
               "CONSOLE_OPERATOR_NAMESPACE": self.operator_namespace,
               "CONSOLE_FUNCTION_NAMESPACE": self.function_namespace,
               "CONSOLE_GATEWAY_URL": f"http://127.0.0.1:{self.gateway_port}", "CONSOLE_STORE_URL": store_url,
               "CONSOLE_STORE_TOKEN_FILE": str(token_file)}
        env.pop("CONSOLE_PASSWORD", None)
        log_path = folder / "console.log"
        process = processes.spawn([sys.executable, "-m", "mlfunctions_console"], log_path, env=env)
        self._exit.callback(processes.stop, process)
        url = f"http://127.0.0.1:{port}"
        processes.wait_healthy(f"{url}/healthz", process, "the console", log_path)
        return url, "admin", password_file

    def start_prometheus(self, port: int | None = None) -> prometheus.PrometheusProcess:
        """A real Prometheus scraping the operator, the gateway, the model store and (found through the
        gateway) every function replica; after start_model_store, start_operator and start_gateway."""
        gateway = self.gateway_process
        if port:
            _port_free(port, "Prometheus", "--prometheus-port")
        metrics = prometheus.start(prometheus.Targets(
            operator=self.operator_metrics, gateway=gateway.url.removeprefix("http://"),
            iris_server=f"127.0.0.1:{self.store_port}", gateway_auth=gateway.basic_auth),
            self.state_dir / "prometheus", port)
        self._exit.callback(metrics.stop)
        return metrics

    # ---- using it ----

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return _run([self.cluster.kubectl, "--kubeconfig", str(self.cluster.kubeconfig), *args], stdin)

    def apply(self, manifests: list[Path]) -> list[dict]:
        """kubectl apply the files; returns the MLFunctions among them."""
        self.kubectl("apply", *[arg for path in manifests for arg in ("-f", str(path))])
        return [doc for path in manifests for doc in yaml.safe_load_all(path.read_text())
                if doc and doc.get("kind") == "MLFunction"]

    def wait_ready(self, mlfunction: dict, timeout: float = 300.0) -> dict:
        """The MLFunction once it is Ready=True; StackError with its conditions if it is not in time."""
        meta = mlfunction["metadata"]
        objects = client.CustomObjectsApi(self.api)
        current: dict = {}

        def ready() -> dict | None:
            nonlocal current
            current = objects.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], "mlfunctions",
                                                           meta["name"])
            status = current.get("status") or {}
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            current_generation = status.get("observedGeneration") == current["metadata"]["generation"]
            return current if is_ready and current_generation else None

        try:
            return processes.wait_for(ready, timeout, f"MLFunction {meta['name']} to be Ready", interval=0.2)
        except TimeoutError:
            conditions = (current.get("status") or {}).get("conditions", [])
            raise StackError(f"MLFunction {meta['namespace']}/{meta['name']} not Ready after {timeout:.0f}s: "
                             f"{conditions}; see {self.state_dir}/operator.log and {self.state_dir}/faas/") from None

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


def _helm() -> str:
    # helm.sh says on stderr when it builds helm (minutes, the first time): let that reach the terminal.
    helm = subprocess.run(["bash", str(REPO_ROOT / "hack" / "helm.sh")], stdout=subprocess.PIPE, text=True,
                          check=False)
    if helm.returncode != 0:
        raise StackError("hack/helm.sh could not provide helm (see above)")
    return helm.stdout.strip()


def has_model(store_url: str, token_file: Path, model: str) -> bool:
    from iris_client import ModelStoreClient, NotFound  # the model store's own client

    try:
        return bool(ModelStoreClient(store_url, token_file.read_text().strip()).list_versions(model))
    except NotFound:
        return False


def up(options: argparse.Namespace) -> int:
    began = time.monotonic()
    state = options.state_dir
    state.mkdir(parents=True, exist_ok=True)
    workdir = state / "control-plane"
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh cluster every time (see the module's docstring)
    extra_lines: list[str] = []  # what optional components add to the instructions
    with ExitStack() as running:
        _say("starting the control plane (etcd, kube-apiserver, kube-controller-manager)")
        cluster = controlplane.LocalControlPlane(workdir=workdir, keep_workdir=True)
        cluster.start()
        running.callback(cluster.stop)
        stack = LocalStack(cluster, state, gateway_port=options.gateway_port, store_port=options.store_port,
                           pool_size=options.pool_size)
        running.callback(stack.close)
        _say("installing the CRDs")
        stack.install()
        _say(f"starting the model store (iris-server) on 127.0.0.1:{options.store_port}")
        store_url, token_file = stack.start_model_store()
        _say("starting the operator (with the Helm chart's RBAC)")
        stack.start_operator(stack.install_operator_rbac(store_url, token_file))
        _say("preparing the functions' environments (the first time: a few minutes)")
        for folder in stack_images(STACK_FILE).values():
            funcenv.function_python(folder)  # the "image pull": built once, cached in ~/.cache/mlfunctions
        _say(f"starting the local OpenFaaS gateway on 127.0.0.1:{options.gateway_port}")
        gateway = stack.start_gateway()

        if options.prometheus:
            _say(f"starting Prometheus on 127.0.0.1:{options.prometheus_port}, scraping the stack")
            metrics = stack.start_prometheus(options.prometheus_port)
            extra_lines.append(f"  prometheus   {metrics.url}   (API only: {metrics.url}/api/v1/query?query=up)")
        _say("applying examples/ (iris)")
        trainers = stack.apply([EXAMPLES / name for name in TRAIN_EXAMPLES])
        trainers = [stack.wait_ready(m) for m in trainers]
        if has_model(store_url, token_file, "iris"):
            _say("the model store already holds iris: not training again (see below to retrain)")
        else:
            _say("training iris")
            answer = stack.invoke(trainers[0], "{}")
            if answer.status_code != 200:
                raise StackError(f"training failed: {answer.status_code} {answer.text}")
            _say(f"trained: {answer.text.strip()}")
        predictors = [stack.wait_ready(m) for m in stack.apply([EXAMPLES / n for n in PREDICT_EXAMPLES])]
        sample = stack.invoke(predictors[0], SAMPLE, timeout=60)
        if sample.status_code != 200:
            raise StackError(f"the sample prediction failed: {sample.status_code} {sample.text}")
        _say(f"starting the console on 127.0.0.1:{options.console_port}")
        console = stack.start_console(store_url, token_file, options.console_port, CONSOLE_TRAIN_TRIGGERS)

        print(_instructions(cluster, gateway, store_url, token_file, trainers[0], predictors,
                            time.monotonic() - began, sample.text.strip(), console, extra_lines), flush=True)
        _wait_for_ctrl_c()
        _say("stopping")
    _say("stopped")
    return 0


def _instructions(cluster, gateway, store_url, token_file, trainer, predictors, seconds, sample,
                  console, extra_lines=()) -> str:
    train_url = trainer["status"]["url"]
    lines = [
        "",
        f"mlfunctions is up ({seconds:.0f}s). Ctrl-C stops everything.",
        "",
        f"  export KUBECONFIG={cluster.kubeconfig}",
        f"  export PATH={Path(cluster.kubectl).parent}:$PATH      # kubectl {cluster.version}",
        f"  gateway      {gateway.url}   (/system API: user {gateway.credentials.user}, password "
        f"{gateway.credentials.password})",
        f"  model store  {store_url}   (admin token in {token_file})",
        f"  console      {console[0]}   (user {console[1]}, password {console[2].read_text().strip()})",
        *extra_lines,
        "",
        "Try:",
        "  kubectl get mlfunctions -A             # Task, Model, Ready, Replicas, URL",
        "  kubectl get functions.openfaas.com -A",
    ]
    for predictor in predictors:
        lines.append(f"  curl -s {predictor['status']['url']} -H 'Content-Type: application/json' -d '{SAMPLE}'")
    lines += [
        f"     -> {sample}",
        f"  curl -s -X POST {train_url} -d '{{}}' -H \"Authorization: Bearer $(kubectl -n "
        f"{trainer['metadata']['namespace']} get secret {trainer['metadata']['name']}-invoke "
        "-o jsonpath='{.data.token}' | base64 -d)\"   # train a new version of iris",
        f"  curl -s -u {gateway.credentials.user}:{gateway.credentials.password} {gateway.url}/system/functions",
        f"  faas-cli list -g {gateway.url}        # after: faas-cli login -g {gateway.url} -u "
        f"{gateway.credentials.user} -p {gateway.credentials.password}",
        f"  kubectl apply -f {EXAMPLES}/digits.yaml   # another model; then POST to its train function",
        "",
        "iris-predict-v1 scales to zero after 15 minutes without requests; the next request starts it again.",
        f"Logs in {gateway.state_dir.parent}/: operator.log, model-store/iris-server.log, faas/gateway.log, "
        "faas/logs/<namespace>/<function>-<n>.log",
    ]
    return "\n".join(lines)


def _wait_for_ctrl_c() -> None:
    stop = {"now": False}

    def handle(signum, frame):
        stop["now"] = True

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop["now"]:
            signal.pause()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(command: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, text=True, capture_output=True)
    if result.returncode != 0:
        raise StackError(f"{Path(command[0]).name} {' '.join(command[1:4])} ... failed: {result.stderr.strip()}")
    return result.stdout


def _port_free(port: int, what: str, flag: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no owner
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(f"127.0.0.1:{port} is taken (another `up`?); choose another port for {what} "
                             f"with {flag}") from None


def _say(message: str) -> None:
    print(f"[up {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlfunctions_stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the stack and keep it running until Ctrl-C")
    start.add_argument("--gateway-port", type=int, default=8080)
    start.add_argument("--store-port", type=int, default=8081)
    start.add_argument("--console-port", type=int, default=8088)
    start.add_argument("--pool-size", type=int, default=1, help="pre-warmed processes per function environment")
    start.add_argument("--state-dir", type=Path, default=STATE_DIR)
    start.add_argument("--prometheus", action="store_true", default=os.environ.get("PROMETHEUS") == "1",
                       help="also run a real Prometheus scraping the stack (or PROMETHEUS=1)")
    start.add_argument("--prometheus-port", type=int, default=9090)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return up(options)
    except (StackError, controlplane.ControlPlaneError, processes.NotHealthy,
            prometheus.PrometheusError) as error:
        print(f"[up] failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
