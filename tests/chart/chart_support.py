"""Helpers shared by the chart tests (a module of its own: `conftest` is not importable by name when every test
folder has one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "mlfunctions"
EXAMPLES = REPO_ROOT / "examples"
# The control plane's release: the chart is rendered for the Kubernetes it is installed on in the tests.
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
