"""Fixtures for the chart, image, examples and GitOps-health tests: helm, kubectl and the kstatus checker, all real
binaries (built once from Go modules and cached under ~/.cache/mlfunctions/)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from mlfunctions_dev import controlplane, operator_process

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "mlfunctions"
EXAMPLES = REPO_ROOT / "examples"
# The control plane's release: helm renders for it (our helm, built without the release's ldflags, would
# otherwise assume Kubernetes 1.20 and refuse the chart's kubeVersion).
KUBE_VERSION = "1.34.4"


class Helm:
    """The helm CLI against this repository's chart; `kubeconfig` is only needed for install/upgrade."""

    def __init__(self, binary: str, kubeconfig: Path | None = None):
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [self.binary, *args]
        if self.kubeconfig:
            command += ["--kubeconfig", str(self.kubeconfig)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def template(self, *args: str, release: str = "mlf", namespace: str = "mlfunctions-system",
                 check: bool = True) -> subprocess.CompletedProcess:
        return self.run("template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION,
                        *args, check=check)

    def render(self, *args: str, **kwargs) -> list[dict]:
        """The rendered manifests, parsed."""
        return [d for d in yaml.safe_load_all(self.template(*args, **kwargs).stdout) if d]


def find(documents: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


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
