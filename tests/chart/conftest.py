"""Fixtures for the chart, image, examples and GitOps-health tests: helm, kubectl and the kstatus checker, all real
binaries (built once from Go modules and cached under ~/.cache/mlfunctions/)."""

from __future__ import annotations

import json
import subprocess

import pytest
from chart_support import REPO_ROOT, Helm
from mlfunctions_harness import controlplane, operator_process


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm(operator_process.helm())


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    """kubectl from the control-plane build (no cluster needed for `kubectl kustomize`)."""
    return str(controlplane.binaries_dir() / "kubectl")


@pytest.fixture(scope="session")
def kstatus():
    """kstatus(objects) -> [{'status', 'message'}]: sigs.k8s.io/cli-utils' kstatus, via hack/kstatus."""
    built = subprocess.run(["bash", str(REPO_ROOT / "hack" / "kstatus" / "build.sh")], capture_output=True,
                           text=True, timeout=600, check=False)
    assert built.returncode == 0, f"hack/kstatus/build.sh failed:\n{built.stderr}"
    binary = built.stdout.strip().splitlines()[-1]

    def compute(objects: list[dict]) -> list[dict]:
        result = subprocess.run([binary], input=json.dumps(objects), capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"kstatus failed:\n{result.stderr}"
        return json.loads(result.stdout)

    return compute
