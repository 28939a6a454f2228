"""The web console (console/) for `make up`: its ServiceAccount under the chart's console RBAC, a read-only store
token it mints once, its password, and the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from mlfunctions_harness import processes

from mlfunctions_stack import state_files
from mlfunctions_stack.commands import StackError, helm, port_free, run

CHART = Path(__file__).resolve().parents[3] / "charts" / "mlfunctions"


def start(stack, store_url: str, admin_token_file: Path, port: int,
          train_triggers: tuple[tuple[str, str], ...] = ()) -> tuple[subprocess.Popen, str, str, Path]:
    """The console on 127.0.0.1:`port` once it answers /healthz; returns (process, url, user, password file).
    `stack` is the LocalStack it belongs to; `train_triggers`: (namespace, MLFunction) pairs it may train, whose
    namespaces must exist."""
    folder = stack.state_dir / "console"
    password_file, token_file = folder / "password", folder / "store-token"
    state_files.secret(password_file)
    _ensure_store_token(store_url, admin_token_file, token_file)
    triggers = [arg for i, (namespace, name) in enumerate(train_triggers) for arg in (
        "--set", f"console.trainTriggers[{i}].namespace={namespace}",
        "--set", f"console.trainTriggers[{i}].mlfunction={name}")]
    rendered = run([helm(), "template", stack.release, str(CHART), "--namespace",
                    stack.operator_namespace, "--kube-version", stack.cluster.version,
                    "--set", "console.enabled=true",
                    "--set", f"functionNamespace={stack.function_namespace}", *triggers,
                    "--show-only", "templates/console-serviceaccount.yaml",
                    "--show-only", "templates/console-rbac.yaml"])
    stack.kubectl("apply", "-f", "-", stdin=rendered)
    account = next(d for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "ServiceAccount")
    kubeconfig = stack.cluster.service_account_kubeconfig(
        stack.operator_namespace, account["metadata"]["name"], folder / "console.kubeconfig")
    port_free(port, "the console", "--console-port")
    env = {**os.environ, "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port),
           "CONSOLE_USERNAME": "admin", "CONSOLE_PASSWORD_FILE": str(password_file),
           "CONSOLE_KUBECONFIG": str(kubeconfig),
           "CONSOLE_OPERATOR_NAMESPACE": stack.operator_namespace,
           "CONSOLE_FUNCTION_NAMESPACE": stack.function_namespace,
           "CONSOLE_GATEWAY_URL": f"http://127.0.0.1:{stack.gateway_port}", "CONSOLE_STORE_URL": store_url,
           "CONSOLE_STORE_TOKEN_FILE": str(token_file)}
    env.pop("CONSOLE_PASSWORD", None)
    log_path = folder / "console.log"
    process = processes.spawn([sys.executable, "-m", "mlfunctions_console"], log_path, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_healthy(f"{url}/healthz", process, "the console", log_path)
    except processes.NotHealthy:
        processes.stop(process)
        raise
    return process, url, "admin", password_file


def _ensure_store_token(store_url: str, admin_token_file: Path, token_file: Path) -> None:
    """A read-only token for every model in `token_file`: kept while the store still accepts it, minted again
    when it is missing, empty (a start killed while writing it) or no longer known to the store."""
    current = token_file.read_text().strip() if token_file.exists() else ""
    if current and requests.get(f"{store_url}/v1/whoami", timeout=10,
                                headers={"Authorization": f"Bearer {current}"}).status_code == 200:
        return
    minted = requests.post(f"{store_url}/v1/tokens", timeout=10, json={
        "models": ["*"], "rights": ["read"], "description": "console (make up)"},
        headers={"Authorization": f"Bearer {admin_token_file.read_text().strip()}"})
    if minted.status_code != 201:
        raise StackError(f"the store refused a console token: {minted.status_code} {minted.text}; "
                         f"see {admin_token_file.parent}/iris-server.log, or start from scratch: make up FRESH=1")
    state_files.write_secret(token_file, minted.json()["token"])
