"""The chart on the node as a user installs it: helm against the node's API server with the images built from the
project's Dockerfiles, kubectl to wait on conditions (its watches, with deadlines), and MLFunctions as users write
them. Shared by the node suite and bench/bench_node.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import yaml
from kubernetes import client
from local_openfaas.faas_netes import identity
from mlfunctions_harness import crds, operator_process
from mlfunctions_harness.images import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "mlfunctions"
# OpenFaaS's Function CRD: the one piece of OpenFaaS a cluster must have for the chart (its README says so).
FUNCTION_CRD = REPO_ROOT / "hack" / "crds" / "openfaas.com_functions.yaml"
HELM_TIMEOUT = "180s"


def user_values(built: dict[str, Image], **overrides) -> dict:
    """Values a user sets to run locally built images: the image names containerd knows (docker.io/...), and a
    pull policy that never asks a registry (none is reachable here, and none may be)."""
    def image(name: str) -> dict:
        repository, tag = built[name].ref.rsplit(":", 1)
        return {"repository": repository, "tag": tag, "pullPolicy": "Never"}

    values = {
        "operator": {"image": image("operator")},
        "console": {"image": image("console")},  # on by default: `helm install --wait` waits for it too
        "functions": {"trainImage": built["train"].ref, "predictImage": built["predict"].ref},
        "modelStores": {"image": built["iris-server"].ref},
    }
    return _merge(values, overrides)


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


class Kubectl:
    """kubectl as the cluster's admin (set-up and checks only; the operator and faas-netes run as themselves)."""

    def __init__(self, binary: str, kubeconfig: Path):
        self.binary, self.kubeconfig = binary, kubeconfig

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 240) -> str:
        result = subprocess.run([self.binary, f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, *documents: dict) -> None:
        self("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(documents))

    def wait(self, target: str, condition: str, namespace: str | None = None, timeout: float = 180) -> None:
        """`kubectl wait --for=<condition>` (a watch) until it holds, failing after `timeout` seconds."""
        scope = ["-n", namespace] if namespace else []
        self("wait", *scope, f"--for={condition}", target, f"--timeout={timeout:g}s", timeout=timeout + 30)

    def rollout(self, deployment: str, namespace: str, timeout: float = 180) -> None:
        self("rollout", "status", "-n", namespace, f"deployment/{deployment}", f"--timeout={timeout:g}s",
             timeout=timeout + 30)


class Release:
    """One helm release of the chart, in a namespace of its own, with its own function namespace."""

    def __init__(self, kubeconfig: Path, workdir: Path, name: str | None = None):
        suffix = uuid.uuid4().hex[:6]
        self.name = name or f"mlf-{suffix}"
        self.namespace = f"{self.name}-system"
        self.function_namespace = f"{self.name}-fn"
        self.kubeconfig, self.workdir = kubeconfig, workdir
        self.helm = operator_process.helm()
        self.operator = f"{self.name}-mlfunctions-operator"  # the chart's <release>-mlfunctions-operator

    def _helm(self, *args: str, values: dict | None = None) -> str:
        command = [self.helm, *args, "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace]
        if values is not None:
            path = self.workdir / f"values-{uuid.uuid4().hex[:6]}.yaml"
            path.write_text(yaml.safe_dump(values))
            command += ["--values", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def install(self, values: dict) -> str:
        """`helm install --wait`: returns once the release's Deployment is available, as helm judges it."""
        values = _merge(values, {"functionNamespace": self.function_namespace})
        return self._helm("install", self.name, str(CHART), "--create-namespace", "--wait",
                          "--timeout", HELM_TIMEOUT, values=values)

    def upgrade(self, values: dict) -> str:
        values = _merge(values, {"functionNamespace": self.function_namespace})
        return self._helm("upgrade", self.name, str(CHART), "--wait", "--timeout", HELM_TIMEOUT, values=values)

    def uninstall(self) -> str:
        return self._helm("uninstall", self.name, "--wait", "--timeout", HELM_TIMEOUT)

    @property
    def store_url(self) -> str:
        """The default ModelStore's URL, as the operator writes it into status (its Service's DNS name)."""
        return f"http://iris-server-default.{self.namespace}.svc:8080"


def openfaas_identity(control_plane, api: client.ApiClient, release: Release, users: str, workdir: Path) -> Path:
    """What a cluster needs of OpenFaaS for the chart: the Function CRD, the function namespace (and the users'),
    and the identity faas-netes acts as there (its ServiceAccount under faas_netes/rbac.yaml): its kubeconfig."""
    crds.install(api, [FUNCTION_CRD])
    core = client.CoreV1Api(api)
    for namespace in (release.function_namespace, users):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    account = identity.install(api, release.function_namespace)
    return control_plane.service_account_kubeconfig(release.function_namespace, account,
                                                    workdir / "faas-netes.kubeconfig")


def mlfunction(name: str, namespace: str, task: str, model: str, **spec) -> dict:
    """An MLFunction as a user writes it (the API contract: docs/api.md)."""
    body = {"task": task, "model": {"name": model}, **spec}
    return {"apiVersion": "mlfunctions.dev/v1alpha1", "kind": "MLFunction",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def train_function(name: str, namespace: str, model: str, dataset: str = "iris",
                   estimator: str = "LogisticRegression", params: dict | None = None) -> dict:
    # One replica all the time: the suite invokes it directly (no gateway here to scale it from zero).
    return mlfunction(name, namespace, "train", model,
                      training={"dataset": dataset, "estimator": estimator, "params": params or {}},
                      scaling={"minReplicas": 1, "maxReplicas": 1})


def predict_function(name: str, namespace: str, model: str, scaling: dict | None = None) -> dict:
    return mlfunction(name, namespace, "predict", model, scaling=scaling or {"minReplicas": 1, "maxReplicas": 1})
