"""The chart per deployment mode: gatewayAPI mode renders no RBAC on openfaas.com Functions and hands the
operator the gateway's credentials from the named Secret (as environment, nothing else reads it); the schema and
the templates refuse settings that cannot work."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from mlfunctions_harness.operator_process import CHART, helm

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


def operator_env(documents: list[dict]) -> dict[str, dict]:
    deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("operator"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def test_function_resource_mode_keeps_its_function_rbac():
    documents = render()
    verbs = {verb for rule in openfaas_rules(documents) for verb in rule["verbs"]}
    assert {"get", "create", "patch", "delete", "list", "watch"} <= verbs
    env = operator_env(documents)
    assert env["MLFUNCTIONS_OPENFAAS_DEPLOY"]["value"] == "functionResource"
    assert "MLFUNCTIONS_GATEWAY_PASSWORD" not in env


def test_gateway_mode_has_no_function_rbac_and_credentials_from_the_secret():
    documents = render(*GATEWAY)
    assert openfaas_rules(documents) == []
    env = operator_env(documents)
    assert env["MLFUNCTIONS_OPENFAAS_DEPLOY"]["value"] == "gatewayAPI"
    assert env["MLFUNCTIONS_OPENFAAS_EDITION"]["value"] == "ce"
    for variable, key in (("MLFUNCTIONS_GATEWAY_USERNAME", "basic-auth-user"),
                          ("MLFUNCTIONS_GATEWAY_PASSWORD", "basic-auth-password")):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "openfaas-gateway", "key": key}
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
