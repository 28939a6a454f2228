"""Fixtures for the local runtime and gateway: a tiny function of our own (echo_function/) run as real processes,
the gateway as a real server on 127.0.0.1, and the real functions' environments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from local_support import ECHO_DIR, ECHO_IMAGE, PREDICT_DIR, TRAIN_DIR, stop_gateway
from mlfunctions_harness.processes import free_port
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import rbac


@pytest.fixture(scope="session")
def function_venvs() -> None:
    """Both functions' venvs, built once (about a minute each the very first time, then cached)."""
    funcenv.function_python(TRAIN_DIR)
    funcenv.function_python(PREDICT_DIR)


@pytest.fixture
def echo_programs(tmp_path) -> Path:
    """A programs file mapping ECHO_IMAGE to the echo function, run with this interpreter; a warm process
    preloads aiohttp (so a test can see which path started a replica)."""
    path = tmp_path / "programs.yaml"
    path.write_text(yaml.safe_dump({ECHO_IMAGE: {"python": sys.executable, "argv": [str(ECHO_DIR / "index.py")],
                                                 "cwd": str(ECHO_DIR), "preload": ["aiohttp"]}}))
    return path


@pytest.fixture
def gateway(tmp_path, echo_programs):
    """A standalone gateway (no cluster): functions are deployed through /system/functions."""
    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[echo_programs], autoscale_interval=0.2,
                               ready_timeout=10.0)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture
def kube_gateway(control_plane, k8s, install_crds, namespace, tmp_path, echo_programs):
    """A gateway bound to the real kube-apiserver as the runtime's ServiceAccount, following `namespace`."""
    install_crds("hack/crds/openfaas.com_functions.yaml")
    rbac.ensure_identity(k8s, namespace, "runtime")
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "runtime", tmp_path / "runtime.kubeconfig")
    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[echo_programs], kubeconfig=kubeconfig,
                               autoscale_interval=0.2, ready_timeout=10.0,
                               extra_args=["--watch-namespace", namespace, "--namespace", namespace])
    try:
        yield gw
    finally:
        stop_gateway(gw)
