"""Fixtures for the faas-netes backend's tests: golden manifests (unit) and a reconciler running as its own
ServiceAccount against the real API server (integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from local_openfaas.faas_netes import background, identity

GOLDEN = Path(__file__).parent / "golden"
FUNCTION_CRD = "hack/crds/openfaas.com_functions.yaml"


@pytest.fixture
def golden():
    """golden(name, documents): compare manifests with golden/<name>.yaml; UPDATE_GOLDEN=1 rewrites the file
    instead (review the diff against faas-netes before committing it)."""

    def check(name: str, documents: list[dict]) -> None:
        path = GOLDEN / f"{name}.yaml"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(yaml.safe_dump_all(documents, sort_keys=True, width=120))
        assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
        expected = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents == expected, f"manifests differ from {path} (UPDATE_GOLDEN=1 rewrites it)"

    return check


@pytest.fixture(scope="session")
def function_crd(install_crds):
    return install_crds(FUNCTION_CRD)


@pytest.fixture
def faas_netes(control_plane, k8s, function_crd, namespace, tmp_path):
    """A reconciler for `namespace`, running as its own ServiceAccount under rbac.yaml (never as admin)."""
    account = identity.install(k8s, namespace)
    kubeconfig = control_plane.service_account_kubeconfig(namespace, account, tmp_path / "faas-netes.kubeconfig")
    running = background.start(kubeconfig, namespace)
    yield running
    running.stop()
