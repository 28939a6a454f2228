"""The stack fixture of this folder's tests on the session's control plane: `make up`'s own pieces
(mlfunctions_stack.up.LocalStack) with namespaces and a Helm release of the test's own, torn down with every
MLFunction released by its own operator and no stack process left behind."""

from __future__ import annotations

import os

import pytest
from kubernetes import client
from mlfunctions_harness.mlfunction_cleanup import delete_mlfunctions
from mlfunctions_harness.processes import descendants, free_port, pid_alive, wait_for
from mlfunctions_stack.up import LocalStack


@pytest.fixture
def stack(control_plane, k8s, namespace, tmp_path):
    local = LocalStack(control_plane, tmp_path / "stack", gateway_port=free_port(), store_port=free_port(),
                       operator_namespace=f"{namespace}-sys", function_namespace=f"{namespace}-fn",
                       release=f"stack-{namespace[-6:]}")
    # Only what appears from here on is the stack's: earlier suites' processes are theirs to judge.
    before = set(descendants(os.getpid()))
    try:
        local.install()
        store_url, token_file = local.start_model_store()
        local.start_operator(local.install_operator_rbac(store_url, token_file))
        local.gateway = local.start_gateway()
        yield local
    finally:
        children = [pid for pid in descendants(os.getpid()) if pid not in before]
        try:
            delete_mlfunctions(k8s, namespace)  # while this stack's operator runs: no later one adopts them
        finally:
            local.close()
        for extra in (f"{namespace}-sys", f"{namespace}-fn"):
            client.CoreV1Api(k8s).delete_namespace(extra)
    try:
        wait_for(lambda: not _lingering(children), timeout=20, what="every process of the stack to stop")
    except TimeoutError as error:
        raise AssertionError(f"{error}; still running: {_lingering(children)}") from None


def _lingering(pids: list[int]) -> list[str]:
    return [f"{pid}: {_cmdline(pid)}" for pid in pids if pid_alive(pid) and _is_stack_process(pid)]


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _is_stack_process(pid: int) -> bool:
    """The stack's processes: not the session's control plane, which the test process also started, nor the
    session node's containers (their own PID namespace), which run the same index.py."""
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid"):
            return False
    except OSError:
        return False
    cmdline = _cmdline(pid)
    return any(name in cmdline for name in ("iris_server", "mlfunctions_operator", "local_openfaas.gateway",
                                            "zygote.py", "index.py"))
