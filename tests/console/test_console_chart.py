"""The chart's console: a hardened Deployment of the console image with its settings, its own ServiceAccount
with read-only RBAC (Secrets only by name, for the train triggers it was given), a login Secret whose
random password survives upgrades (Helm's lookup against the real API server), or the user's own Secret."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "mlfunctions"
SETTINGS = (REPO_ROOT / "console" / "mlfunctions_console" / "settings.py").read_text()


@pytest.fixture(scope="module")
def helm() -> str:
    return subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "helm.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()


def _render(helm: str, *args: str, kubeconfig: Path | None = None, namespace: str = "mlfunctions-system"):
    command = [
        helm,
        "template",
        "mlf",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        "1.34.4",
        "--set",
        "console.enabled=true",
        *args,
    ]
    if kubeconfig:
        command += ["--dry-run=server", "--kubeconfig", str(kubeconfig)]
    rendered = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    return [
        d
        for d in documents
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "console"
    ]


def _one(documents: list[dict], kind: str) -> dict:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found


def test_the_console_is_a_hardened_deployment_of_its_own_image(helm):
    documents = _render(helm)
    assert sorted(d["kind"] for d in documents) == sorted(
        [
            "ServiceAccount",
            "Secret",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Deployment",
        ]
    )
    deployment = _one(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == _one(documents, "ServiceAccount")["metadata"]["name"]
    assert container["image"] == "ghcr.io/mlfunctions/console:0.1.0"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/tmp",
        "/etc/mlfunctions-console/auth",
        "/etc/mlfunctions-console/store",
    }
    for variable in container["env"]:  # every variable the chart sets is one the console reads
        assert f'"{variable["name"].removesuffix("_FILE")}' in SETTINGS or f'"{variable["name"]}"' in SETTINGS
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONSOLE_GATEWAY_URL"] == "http://gateway.openfaas:8080"
    assert env["CONSOLE_FUNCTION_NAMESPACE"] == "openfaas-fn"
    service = _one(documents, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_in_gateway_mode_it_reads_the_gateway_not_functions(helm):
    """openfaas.deploy=gatewayAPI (OpenFaaS CE): no Function resources, so no RBAC on them; the gateway's Secret
    (openfaas.gatewaySecret) mounted read-only as files, and the mode passed on."""
    documents = _render(
        helm, "--set", "openfaas.deploy=gatewayAPI", "--set", "openfaas.gatewaySecret=openfaas-gateway"
    )
    rules = [rule for d in documents if d["kind"] in ("ClusterRole", "Role") for rule in d["rules"]]
    assert not [rule for rule in rules if "openfaas.com" in rule["apiGroups"]]
    pod = _one(documents, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONSOLE_OPENFAAS_DEPLOY"] == "gatewayAPI"
    for variable in env:
        assert f'"{variable.removesuffix("_FILE")}' in SETTINGS or f'"{variable}"' in SETTINGS
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "openfaas-gateway"]
    assert [item["path"] for item in volume["secret"]["items"]] == ["basic-auth-user", "basic-auth-password"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] and "subPath" not in mount  # a subPath mount would never be updated
    assert env["CONSOLE_GATEWAY_CREDENTIALS_DIR"] == mount["mountPath"]
    default = _one(_render(helm), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CONSOLE_OPENFAAS_DEPLOY", "value": "functionResource"} in default["env"]


def test_rbac_reads_and_names_the_only_secrets_it_may_read(helm):
    documents = _render(
        helm,
        "--set",
        "console.trainTriggers[0].namespace=data-science",
        "--set",
        "console.trainTriggers[0].mlfunction=iris-train",
        "--set",
        "console.trainTriggers[1].namespace=data-science",
        "--set",
        "console.trainTriggers[1].mlfunction=digits-train",
        "--set",
        "console.trainTriggers[2].namespace=team-b",
        "--set",
        "console.trainTriggers[2].mlfunction=wine-train",
    )
    roles = [d for d in documents if d["kind"] in ("ClusterRole", "Role")]
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list"}, rule
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"] and rule["resourceNames"], rule
    secrets = {
        r["metadata"]["namespace"]: rule["resourceNames"]
        for r in roles
        for rule in r["rules"]
        if "secrets" in rule["resources"]
    }
    assert secrets == {
        "data-science": ["digits-train-invoke", "iris-train-invoke"],
        "team-b": ["wine-train-invoke"],
    }
    account = _one(documents, "ServiceAccount")["metadata"]["name"]
    for binding in (d for d in documents if d["kind"].endswith("Binding")):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": "mlfunctions-system"}
        ]


def test_the_login_secret_is_random_or_the_users_own(helm):
    first, second = (_one(_render(helm), "Secret") for _ in range(2))
    passwords = [base64.b64decode(s["data"]["password"]).decode() for s in (first, second)]
    assert len(passwords[0]) == 32 and passwords[0] != passwords[1]
    assert base64.b64decode(first["data"]["username"]).decode() == "admin"
    own = _render(helm, "--set", "console.auth.existingSecret=my-login")
    assert not [d for d in own if d["kind"] == "Secret"]
    volumes = _one(own, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "auth",
        "secret": {
            "secretName": "my-login",
            "items": [{"key": "username", "path": "username"}, {"key": "password", "path": "password"}],
        },
    } in volumes


def test_an_upgrade_keeps_the_password(helm, control_plane, k8s):
    """What `helm upgrade` renders when the Secret exists: the same password (Helm's lookup, against the real
    API server), so people's sign-ins keep working."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s)
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        rendered = _one(_render(helm, namespace=namespace), "Secret")
        core.create_namespaced_secret(namespace, rendered)
        again = _one(_render(helm, kubeconfig=control_plane.kubeconfig, namespace=namespace), "Secret")
        assert again["data"]["password"] == rendered["data"]["password"]
    finally:
        core.delete_namespace(namespace)
