"""The chart as helm sees it: lint, render, schema, the operator Deployment's hardening, CRD parity, the default
ModelStore and the values file. No cluster needed."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from chart_support import CHART, REPO_ROOT, find
from mlfunctions_operator.api import ModelStoreSpec
from mlfunctions_operator.config import OperatorConfig


def test_chart_lints_strictly(helm):
    result = helm.run("lint", "--strict", str(CHART), "--kube-version", "1.34.4")
    assert "0 chart(s) failed" in result.stdout


def test_chart_refuses_kubernetes_without_cel_quantity(helm):
    result = helm.template("--kube-version", "1.29.0", check=False)
    assert result.returncode != 0 and "kubeVersion" in result.stderr


COMPONENT = "app.kubernetes.io/component"


def _component(documents: list[dict], component: str) -> list[dict]:
    """The objects of one part of the chart (operator, console, model-store), told apart by their label."""
    return [d for d in documents if (d["metadata"].get("labels") or {}).get(COMPONENT) == component]


def _kinds(documents: list[dict]) -> list[tuple[str, str]]:
    return sorted((d["kind"], d["metadata"].get("namespace", "")) for d in documents)


# Least privilege, each with its own identity: the operator's and the console's ServiceAccount and RBAC.
IDENTITY_AND_RBAC = [
    ("ServiceAccount", "mlfunctions-system"), ("ClusterRole", ""), ("ClusterRoleBinding", ""),
    ("Role", "openfaas-fn"), ("RoleBinding", "openfaas-fn"),
    ("Role", "mlfunctions-system"), ("RoleBinding", "mlfunctions-system"),
]


def test_renders_the_operator_and_its_least_privilege(helm):
    documents = helm.render()
    operator = _component(documents, "operator")
    assert _kinds(operator) == sorted([*IDENTITY_AND_RBAC, ("Deployment", "mlfunctions-system"),
                                       ("Service", "mlfunctions-system")])  # the Service: its /metrics
    # Everything the chart renders by default: the operator, the default ModelStore and the console (its login
    # Secret and Service besides its own identity and Deployment); nothing without a component.
    assert _kinds(_component(documents, "console")) == sorted([
        *IDENTITY_AND_RBAC, ("Secret", "mlfunctions-system"), ("Service", "mlfunctions-system"),
        ("Deployment", "mlfunctions-system")])
    assert _kinds(_component(documents, "model-store")) == [("ModelStore", "mlfunctions-system")]
    assert len(documents) == len(operator) + len(_component(documents, "console")) + 1
    deployment = find(operator, "Deployment")
    account = find(operator, "ServiceAccount")["metadata"]["name"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account
    for binding in (d for d in operator if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                        "namespace": "mlfunctions-system"}]


def test_rbac_grants_no_wildcards(helm):
    for role in (d for d in helm.render() if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{role['kind']} {role['metadata']['name']}: {field} has '*'"
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def _operator(documents: list[dict]) -> tuple[dict, dict, dict]:
    deployment = find(_component(documents, "operator"), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return deployment, pod, container


def test_operator_deployment_is_one_hardened_replica(helm):
    deployment, pod, container = _operator(helm.render())
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    probe = container["livenessProbe"]["httpGet"]
    port = next(p for p in container["ports"] if p["name"] == probe["port"])["containerPort"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert probe["path"] == "/healthz" and env["MLFUNCTIONS_HEALTH_ADDRESS"] == f"0.0.0.0:{port}"
    assert container["image"] == "ghcr.io/mlfunctions/mlfunctions-operator:0.1.0"
    # The selector must survive upgrades: nothing version-specific in it.
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "mlfunctions", "app.kubernetes.io/instance": "mlf",
        "app.kubernetes.io/component": "operator"}


# What an installation must control; the operator's other settings are tuning knobs (operator.extraEnv).
INSTALLATION_SETTINGS = {
    "operator_namespace", "function_namespace", "gateway_url", "train_image", "predict_image", "iris_server_image",
    "default_model_store", "create_default_model_store", "model_refresh_seconds", "health_address", "log_level",
    "log_format",
}


def test_every_operator_env_var_is_an_operator_setting(helm):
    """A typo in the chart's env would silently leave the operator on its default: every MLFUNCTIONS_* variable
    must name a field of OperatorConfig, and the settings an installation must control are all set."""
    _, _, container = _operator(helm.render())
    names = {e["name"] for e in container["env"]}
    settings = {f"MLFUNCTIONS_{field.upper()}" for field in OperatorConfig.model_fields}
    assert names - settings == set()
    assert {f"MLFUNCTIONS_{s.upper()}" for s in INSTALLATION_SETTINGS} <= names
    namespace = next(e for e in container["env"] if e["name"] == "MLFUNCTIONS_OPERATOR_NAMESPACE")
    assert namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_values_reach_the_operator(helm, monkeypatch):
    _, pod, container = _operator(helm.render(
        "--set", "functionNamespace=fn", "--set", "operator.logLevel=DEBUG",
        "--set", "operator.image.digest=sha256:" + "a" * 64, "--set", "modelStores.default.createOnDemand=false",
        "--set", "functions.modelRefreshSeconds=5", "--set", "operator.extraEnv[0].name=HTTPS_PROXY",
        "--set", "operator.extraEnv[0].value=http://proxy:3128", "--set", "operator.nodeSelector.pool=system"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["MLFUNCTIONS_FUNCTION_NAMESPACE"], env["MLFUNCTIONS_LOG_LEVEL"]) == ("fn", "DEBUG")
    assert (env["MLFUNCTIONS_CREATE_DEFAULT_MODEL_STORE"], env["MLFUNCTIONS_MODEL_REFRESH_SECONDS"]) == ("false", "5")
    assert env["HTTPS_PROXY"] == "http://proxy:3128"
    assert container["image"] == "ghcr.io/mlfunctions/mlfunctions-operator@sha256:" + "a" * 64
    assert pod["nodeSelector"] == {"pool": "system"}
    # The env parses into the operator's own settings, as it will in the pod (the namespace comes from the pod).
    for name, value in env.items():
        monkeypatch.setenv(name, value if value is not None else "mlfunctions-system")
    config = OperatorConfig()
    assert config.function_namespace == "fn" and config.create_default_model_store is False


def test_caps_per_tenant_reach_the_operator_only_when_set(helm, monkeypatch):
    _, _, container = _operator(helm.render())
    assert not [e for e in container["env"] if "_PER_" in e["name"]]  # no cap unless asked for
    _, _, container = _operator(helm.render(
        "--set", "operator.limits.perFunction.maxReplicas=4", "--set", "operator.limits.perFunction.cpu=500m",
        "--set", "operator.limits.perNamespace.memory=8Gi", "--set", "operator.limits.perNamespace.functions=20"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value if value is not None else "mlfunctions-system")
    config = OperatorConfig()
    assert (config.max_replicas_per_function, config.max_cpu_per_replica, config.max_memory_per_namespace,
            config.max_functions_per_namespace) == (4, "500m", "8Gi", 20)
    assert config.max_memory_per_replica is None and config.max_replicas_per_namespace is None


@pytest.mark.parametrize(("setting", "complaint"), [
    ("operator.limits.perFunction.cpu=lots", "/operator/limits/perFunction/cpu"),
    ("operator.limits.perNamespace.replicas=-1", "/operator/limits/perNamespace/replicas"),
    ("operator.logLevel=LOUD", "/operator/logLevel"),
    ("functionNamespace=Not_A_Namespace", "/functionNamespace"),
    ("operator.resources.requests.cpu=lots", "/operator/resources/requests/cpu"),
    ("operator.replicas=2", "replicas"),
    ("operator.image.digest=latest", "/operator/image/digest"),
    ("modelStores.default.replicas=2", "/modelStores/default/replicas"),
    ("modelStores.default.external.url=ftp://models", "/modelStores/default/external/url"),
    ("modelStores.default.external.url=http://models:8080", "/modelStores/default/external/adminTokenSecretRef"),
    ("functions.gatewayURL=gateway", "/functions/gatewayURL"),
    ("rbac.create=maybe", "/rbac/create"),
])
def test_schema_rejects_bad_values(helm, setting, complaint):
    """Both `helm template` and `helm lint` refuse the value and say which one."""
    rendered = helm.template("--set", setting, check=False)
    assert rendered.returncode != 0 and complaint in rendered.stderr, rendered.stderr
    linted = helm.run("lint", str(CHART), "--kube-version", "1.34.4", "--set", setting, check=False)
    assert linted.returncode != 0 and complaint in linted.stdout + linted.stderr


def test_default_model_store_variants(helm):
    deployed = find(helm.render(), "ModelStore")
    assert deployed["metadata"]["name"] == "default"
    assert deployed["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert deployed["spec"] == {"replicas": 1, "storage": {"size": "1Gi"}}

    external = find(helm.render("--set", "modelStores.default.name=shared",
                                "--set", "modelStores.default.external.url=https://models.example.com",
                                "--set", "modelStores.default.external.adminTokenSecretRef.name=models-admin"),
                    "ModelStore")
    assert external["metadata"]["name"] == "shared"
    assert external["spec"] == {"external": {"url": "https://models.example.com",
                                             "adminTokenSecretRef": {"name": "models-admin", "key": "admin-token"}}}

    shared = find(helm.render("--set", "modelStores.default.replicas=3",
                              "--set", "modelStores.default.artifacts.s3.bucket=models",
                              "--set", "modelStores.default.artifacts.s3.endpoint=http://seaweedfs.storage:8333",
                              "--set", "modelStores.default.artifacts.s3.credentialsSecretName=s3",
                              "--set", "modelStores.default.catalog.postgres.urlSecretName=catalog-db"),
                  "ModelStore")
    assert shared["spec"] == {
        "replicas": 3, "storage": {"size": "1Gi"},
        "artifacts": {"s3": {"bucket": "models", "region": "us-east-1", "addressing": "path",
                             "endpoint": "http://seaweedfs.storage:8333", "credentialsSecretRef": {"name": "s3"}}},
        "catalog": {"postgres": {"urlSecretRef": {"name": "catalog-db", "key": "url"}}}}
    ModelStoreSpec.model_validate(shared["spec"])  # what the chart renders, the API reads

    none = helm.render("--set", "modelStores.default.create=false")
    assert not [d for d in none if d["kind"] == "ModelStore"]


def test_existing_service_account_is_used_and_rbac_can_be_left_out(helm):
    documents = helm.render("--set", "operator.serviceAccount.create=false",
                            "--set", "operator.serviceAccount.name=platform-operator", "--set", "rbac.create=false")
    operator = _component(documents, "operator")
    assert sorted(d["kind"] for d in operator) == ["Deployment", "Service"]  # the Service: its /metrics
    assert find(operator, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"
    # The console's identity and RBAC are its own values (console.serviceAccount, console.rbac).
    assert sorted(d["kind"] for d in documents if d not in operator) == sorted([
        *(kind for kind, _ in IDENTITY_AND_RBAC), "Secret", "Service", "Deployment", "ModelStore"])


def test_chart_crds_are_the_generated_crds():
    """Helm installs the chart's crds/; they must be byte-identical to crds/ (`make crds` copies them)."""
    generated = {p.name: p.read_bytes() for p in (REPO_ROOT / "crds").glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert generated, "crds/ is empty"
    assert shipped.keys() == generated.keys()
    different = [name for name in generated if generated[name] != shipped[name]]
    assert not different, f"charts/mlfunctions/crds differs from crds/ in {different}: run `make crds`"


def test_helm_renders_the_crds_it_installs(helm):
    rendered = [d for d in helm.render("--include-crds") if d["kind"] == "CustomResourceDefinition"]
    on_disk = [d for p in sorted((REPO_ROOT / "crds").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    assert sorted(rendered, key=lambda d: d["metadata"]["name"]) == \
        sorted(on_disk, key=lambda d: d["metadata"]["name"])


def _keys_without_comment(lines: list[str]) -> list[str]:
    """Keys of a YAML mapping file that have neither a comment line right above them nor an inline comment."""
    missing = []
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        above = lines[number - 1].strip() if number else ""
        if not above.startswith("#") and "#" not in line:
            missing.append(f"line {number + 1}: {match.group(2)}")
    return missing


def test_every_value_is_commented():
    assert _keys_without_comment((CHART / "values.yaml").read_text().splitlines()) == []


def test_comment_check_finds_an_undocumented_key():
    assert _keys_without_comment(["# documented", "a: 1", "b: 2", "c: 3  # inline"]) == ["line 3: b"]


def test_notes_say_what_to_do_next():
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    for step in ("rollout status", "kubectl get crd functions.openfaas.com", "wait", "explain", "crds/"):
        assert step in notes


def _schema_keys(node: dict, root: dict, prefix: str = "") -> set[str]:
    """Every key path the schema declares, following its local $refs."""
    if "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    keys = set()
    for name, prop in (node.get("properties") or {}).items():
        keys.add(prefix + name)
        keys |= _schema_keys(prop, root, f"{prefix}{name}.")
    return keys


def _value_keys(values: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in values.items():
        keys.add(prefix + name)
        if isinstance(value, dict) and value:
            keys |= _value_keys(value, f"{prefix}{name}.")
    return keys


def test_schema_describes_every_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert _value_keys(values) - _schema_keys(schema, schema) == set()
