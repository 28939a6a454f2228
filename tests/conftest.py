"""Fixtures shared by every suite: the real control plane, a real node, a namespace per test, CRD installation.

Any test that uses `control_plane` (directly or through another fixture) is marked `integration` and counted; the
summary says how many ran against the real API server. In CI (CI=true) a run in which none did fails, and a control
plane that cannot be started is an error, never a skip. Tests that use `node` (a kubelet, containerd and the rest
beside a control plane of their own) are marked `node` and `integration` and counted apart; a node that cannot be
started is an error, never a skip, and in CI a run in which no node test ran fails as well.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_harness import controlplane, crds
from mlfunctions_harness.node import LocalNode

REPO_ROOT = Path(__file__).resolve().parents[1]

logging.getLogger("mlfunctions_harness").setLevel(logging.INFO)


class _IntegrationCount:
    """Counts the tests that ran against the real API server, for the summary and the CI check."""

    def __init__(self) -> None:
        self.ran = 0
        self.server: str | None = None
        self.version: str | None = None
        self.started_seconds: float | None = None


class _NodeCount:
    """Counts the tests that ran on the real node, with how long the node took to start, for the summary."""

    def __init__(self) -> None:
        self.ran = 0
        self.started: str | None = None


_count = _IntegrationCount()
_node_count = _NodeCount()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "control_plane" in fixtures or "node" in fixtures:
            item.add_marker(pytest.mark.integration)
        if "node" in fixtures:
            item.add_marker(pytest.mark.node)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "integration" in report.keywords:
        _count.ran += 1
    if report.when == "call" and "node" in report.keywords:
        _node_count.ran += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    line = f"integration: {_count.ran} tests ran against a real kube-apiserver"
    if _count.server:
        line += (f" (the session's: {_count.version} at {_count.server},"
                 f" up in {_count.started_seconds:.1f}s)")
    terminalreporter.write_line(line)
    line = f"node: {_node_count.ran} tests ran on a real node"
    if _node_count.started:
        line += f" ({_node_count.started})"
    terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI must prove the operator against the real API server: a run that selected none of those tests is a failure.
    if os.environ.get("CI") and _count.ran == 0 and exitstatus == 0:
        session.exitstatus = 1
        print("\nCI: no integration test ran against the real control plane; failing the run")
    if os.environ.get("CI") and _node_count.ran == 0 and exitstatus == 0:
        session.exitstatus = 1
        print("\nCI: no test ran on the real node; failing the run")


@pytest.fixture(scope="session")
def control_plane():
    """The real control plane for this run: a local one, or an existing cluster with USE_EXISTING_CLUSTER=1."""
    with controlplane.from_environment() as cluster:
        _count.server = cluster.server
        _count.version = cluster.version
        _count.started_seconds = cluster.started_seconds
        yield cluster


@pytest.fixture(scope="session")
def node():
    """A real node (containerd, kubelet, kube-proxy, kube-scheduler, CoreDNS, local-path-provisioner) with its own
    control plane on the node address: `node.control_plane` is the cluster. Needs root; see hack/harness/README.md."""
    with LocalNode() as started:
        _node_count.started = (f"{started.name} {started.control_plane.version}, Ready in {started.started_seconds:.1f}s,"
                               f" {started.ready_seconds:.1f}s of it from kubelet start to Ready")
        yield started


@pytest.fixture(scope="session")
def k8s(control_plane) -> client.ApiClient:
    """A kubernetes client with admin rights (for test set-up and checks, never for the operator)."""
    with control_plane.api_client() as api:
        yield api


@pytest.fixture
def namespace(k8s: client.ApiClient) -> str:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture(scope="session")
def install_crds(k8s: client.ApiClient):
    """install_crds(*paths): create or update CRDs from files or folders and wait until discovery serves them."""

    def install(*paths: Path | str) -> list[str]:
        return crds.install(k8s, [REPO_ROOT / p for p in paths])

    return install
