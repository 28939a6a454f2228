"""The console's test stack: `make up`'s own pieces (mlfunctions_stack.up.LocalStack) on the session's control
plane, in namespaces of its own: the model store, the operator under the chart's RBAC, the local OpenFaaS,
iris and digits trained through their train functions, and the console as its own ServiceAccount under the
chart's console RBAC, allowed to train iris-train and digits-train (and not iris-train-other).

The operator gets short intervals (resync 3 s; predict functions look for a new model version every second),
so a test sees a new version served in seconds rather than minutes."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager

import pytest
import requests
import yaml
from .console_support import ConsoleStack, functions_of
from kubernetes import client
from mlfunctions_harness import processes
from mlfunctions_stack.up import LocalStack


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "browser: drives the console in headless Chromium (tests/console)")


@contextmanager
def _environment(**values: str):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="package")
def console_stack(control_plane, k8s, tmp_path_factory) -> ConsoleStack:
    # One for this package (tests/console is one, for this scope), gone before the next suite: an operator
    # watches every namespace, so one that outlived these tests would also reconcile (and claim models for) the
    # MLFunctions of the suites that run after them.
    base = f"con-{uuid.uuid4().hex[:6]}"
    namespace, operator_ns, function_ns = f"{base}-ds", f"{base}-sys", f"{base}-fn"
    workdir = tmp_path_factory.mktemp("console-stack")
    core = client.CoreV1Api(k8s)
    stack = LocalStack(
        control_plane,
        workdir / "stack",
        gateway_port=processes.free_port(),
        store_port=processes.free_port(),
        operator_namespace=operator_ns,
        function_namespace=function_ns,
        release=base,
    )
    try:
        stack.install()
        core.create_namespace({"metadata": {"name": namespace}})
        store_url, token_file = stack.start_model_store()
        with _environment(MLFUNCTIONS_RESYNC_SECONDS="3", MLFUNCTIONS_MODEL_REFRESH_SECONDS="1"):
            stack.start_operator(stack.install_operator_rbac(store_url, token_file))
        stack.gateway = stack.start_gateway()
        manifests = workdir / "mlfunctions.yaml"
        manifests.write_text(yaml.safe_dump_all(functions_of(namespace)))
        applied = {m["metadata"]["name"]: m for m in stack.apply([manifests])}
        for trainer in ("iris-train", "digits-train"):
            _train(core, stack, stack.wait_ready(applied[trainer]))
        ready = {name: stack.wait_ready(m) for name, m in applied.items()}
        url, user, password_file = stack.start_console(
            store_url,
            token_file,
            processes.free_port(),
            ((namespace, "iris-train"), (namespace, "digits-train")),
        )
        folder = stack.state_dir / "console"
        yield ConsoleStack(
            stack=stack,
            url=url,
            user=user,
            password=password_file.read_text().strip(),
            store_url=store_url,
            admin_token=token_file.read_text().strip(),
            read_token=(folder / "store-token").read_text().strip(),
            kubeconfig=folder / "console.kubeconfig",
            namespace=namespace,
            operator_namespace=operator_ns,
            function_namespace=function_ns,
            workdir=workdir,
            mlfunctions=ready,
        )
    finally:
        _delete_mlfunctions(k8s, namespace)
        stack.close()
        for name in (namespace, operator_ns, function_ns):
            try:
                core.delete_namespace(name)
            except client.ApiException as error:
                if error.status != 404:
                    raise


def _delete_mlfunctions(k8s, namespace: str) -> None:
    """Delete this stack's MLFunctions while its operator still runs to release their finalizers: left behind in
    a terminating namespace, they would be reconciled by the next suite's operator, which would claim their
    models in its own store."""
    objects = client.CustomObjectsApi(k8s)
    objects.delete_collection_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace, "mlfunctions")
    processes.wait_for(lambda: not objects.list_namespaced_custom_object(
        "mlfunctions.dev", "v1alpha1", namespace, "mlfunctions")["items"], 120,
        f"the MLFunctions in {namespace} to be deleted")


def _train(core: client.CoreV1Api, stack: LocalStack, mlfunction: dict) -> None:
    """Version 1, trained as any caller does: with the function's invoke credential (when there is one)."""
    meta = mlfunction["metadata"]
    try:
        secret = core.read_namespaced_secret(f"{meta['name']}-invoke", meta["namespace"])
        headers = {"Authorization": "Bearer " + base64.b64decode(secret.data["token"]).decode()}
    except client.ApiException as error:
        if error.status != 404:
            raise
        headers = {}
    function = mlfunction["status"]["function"]
    trained = requests.post(
        f"{stack.gateway.url}/function/{function['name']}.{function['namespace']}",
        json={},
        headers=headers,
        timeout=300,
    )
    assert trained.status_code == 200, trained.text


@pytest.fixture
def other_console(console_stack: ConsoleStack, tmp_path):
    """other_console(**env) -> url: another console process on the same stack with settings of the test's own
    (a store that is down, a token the store refuses, a ServiceAccount without rights, a short session)."""
    started: list[subprocess.Popen] = []

    def start(**overrides: str) -> str:
        port = processes.free_port()
        password_file = tmp_path / f"password-{port}"
        password_file.write_text(console_stack.password)
        token_file = tmp_path / f"token-{port}"
        token_file.write_text(overrides.pop("STORE_TOKEN", console_stack.read_token))
        env = {
            **os.environ,
            "CONSOLE_HOST": "127.0.0.1",
            "CONSOLE_PORT": str(port),
            "CONSOLE_USERNAME": console_stack.user,
            "CONSOLE_PASSWORD_FILE": str(password_file),
            "CONSOLE_KUBECONFIG": str(console_stack.kubeconfig),
            "CONSOLE_OPERATOR_NAMESPACE": console_stack.operator_namespace,
            "CONSOLE_FUNCTION_NAMESPACE": console_stack.function_namespace,
            "CONSOLE_GATEWAY_URL": console_stack.gateway_url(),
            "CONSOLE_STORE_URL": console_stack.store_url,
            "CONSOLE_STORE_TOKEN_FILE": str(token_file),
            **overrides,
        }
        log = tmp_path / f"console-{port}.log"
        process = processes.spawn([sys.executable, "-m", "mlfunctions_console"], log, env=env)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        processes.wait_healthy(f"{url}/healthz", process, "the console", log)
        return url

    yield start
    for process in started:
        processes.stop(process)
