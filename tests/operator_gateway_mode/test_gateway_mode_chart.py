"""The chart per deployment mode: gatewayAPI mode renders no RBAC on openfaas.com Functions and hands the
operator the gateway's credentials from the named Secret (a read-only volume of its pod, which the kubelet keeps
current, so the operator needs no restart when it changes; nothing else reads it); the schema and the templates
refuse settings that cannot work."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from mlfunctions_harness.operator_process import CHART, helm
from mlfunctions_operator.config import OperatorConfig

GATEWAY = ["--set", "openfaas.deploy=gatewayAPI", "--set", "openfaas.edition=ce",
           "--set", "openfaas.gatewaySecret=openfaas-gateway"]


def render(*values: str) -> list[dict]:
    out = subprocess.run([helm(), "template", "mlf", str(CHART), "--namespace", "mlfunctions-system", *values],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def refused(*values: str) -> str:
    result = subprocess.run([helm(), "template", "mlf", str(CHART), *values], check=False, capture_output=True,
                            text=True)
    assert result.returncode != 0, "helm rendered what it should refuse"
    return result.stderr


def openfaas_rules(documents: list[dict]) -> list[dict]:
    return [rule for d in documents if d["kind"] in ("ClusterRole", "Role") and "console" not in d["metadata"]["name"]
            for rule in d.get("rules") or [] if "openfaas.com" in rule.get("apiGroups", [])]


def operator_pod(documents: list[dict]) -> dict:
    deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("operator"))
    return deployment["spec"]["template"]["spec"]


def operator_env(documents: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in operator_pod(documents)["containers"][0]["env"]}


def test_function_resource_mode_keeps_its_function_rbac():
    documents = render()
    verbs = {verb for rule in openfaas_rules(documents) for verb in rule["verbs"]}
    assert {"get", "create", "patch", "delete", "list", "watch"} <= verbs
    env = operator_env(documents)
    assert env["MLFUNCTIONS_OPENFAAS_DEPLOY"]["value"] == "functionResource"
    assert "MLFUNCTIONS_GATEWAY_PASSWORD" not in env and "MLFUNCTIONS_GATEWAY_CREDENTIALS_DIR" not in env
    assert [v["name"] for v in operator_pod(documents)["volumes"]] == ["tmp"]


def test_gateway_mode_has_no_function_rbac_and_credentials_from_the_secret():
    documents = render(*GATEWAY)
    assert openfaas_rules(documents) == []
    env = operator_env(documents)
    assert env["MLFUNCTIONS_OPENFAAS_DEPLOY"]["value"] == "gatewayAPI"
    assert env["MLFUNCTIONS_OPENFAAS_EDITION"]["value"] == "ce"
    # Files, not environment: the kubelet updates a mounted Secret in place, environment is fixed at start.
    assert not any("secretKeyRef" in (e.get("valueFrom") or {}) for e in env.values())
    pod = operator_pod(documents)
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": "openfaas-gateway", "items": [
        {"key": "basic-auth-user", "path": "basic-auth-user"},
        {"key": "basic-auth-password", "path": "basic-auth-password"}]}
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    # No subPath: a subPath mount is never updated by the kubelet.
    assert mount["readOnly"] is True and "subPath" not in mount
    assert env["MLFUNCTIONS_GATEWAY_CREDENTIALS_DIR"]["value"] == mount["mountPath"]
    # Every variable is a setting of the operator (a typo would leave it on its default).
    settings = {f"MLFUNCTIONS_{field.upper()}" for field in OperatorConfig.model_fields}
    assert set(env) - settings == set()
    # Nothing grants access to that Secret by name: only the kubelet reads it, for the operator's pod.
    names = [rule.get("resourceNames") for d in documents if d["kind"] in ("ClusterRole", "Role")
             for rule in d.get("rules") or []]
    assert not any(n and "openfaas-gateway" in n for n in names)


@pytest.mark.parametrize(("values", "says"), [
    (["--set", "openfaas.deploy=gatewayAPI"], "openfaas.gatewaySecret"),
    (["--set", "openfaas.edition=ce"], "OpenFaaS CE has no Function CRD"),
    (["--set", "openfaas.deploy=crd"], "/openfaas/deploy"),
    (["--set", "openfaas.edition=free"], "/openfaas/edition"),
])
def test_settings_that_cannot_work_are_refused(values, says):
    assert says in refused(*values)
