"""The chart's Prometheus objects: the operator's metrics Service always; a ServiceMonitor (operator) and a
PodMonitor (function pods) when metrics.serviceMonitor.enabled says so, `auto` meaning when the cluster serves
monitoring.coreos.com/v1. Rendered by the real helm, and applied server-side to the real API server serving
stand-in Prometheus Operator CRDs (tests/chart/prometheus-operator-crds/, a documented fixture)."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from chart_support import Helm, find
from kubernetes import client
from mlfunctions_operator.api import MLFunctionSpec
from mlfunctions_operator.builders.function import build_function
from mlfunctions_operator.config import OperatorConfig
from mlfunctions_operator.naming import FunctionNames, Owner

MONITORS = ("ServiceMonitor", "PodMonitor")
SERVED = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
FIXTURE = "tests/chart/prometheus-operator-crds"


def kinds(documents: list[dict]) -> set[str]:
    return {d["kind"] for d in documents}


def test_auto_renders_monitors_only_when_the_api_is_served(helm):
    assert not kinds(helm.render()) & set(MONITORS)
    rendered = helm.render(*SERVED)
    service_monitor, pod_monitor = find(rendered, "ServiceMonitor"), find(rendered, "PodMonitor")
    service = find(rendered, "Service", "mlf-mlfunctions-operator-metrics")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "health", "protocol": "TCP"}]
    assert service_monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert service_monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    # the ServiceMonitor selects the operator's pods, as the Service does
    deployment = find(rendered, "Deployment", "mlf-mlfunctions-operator")
    assert service_monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # the metrics Service's target port is the container port the operator serves /metrics on
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert pod_monitor["metadata"]["namespace"] == "openfaas-fn"
    assert pod_monitor["spec"]["namespaceSelector"] == {"matchNames": ["openfaas-fn"]}
    assert pod_monitor["spec"]["podMetricsEndpoints"] == [{"targetPort": 8080, "path": "/_/metrics", "interval": "30s"}]
    assert pod_monitor["spec"]["selector"] == {"matchExpressions": [{"key": "mlfunctions.dev/task",
                                                                    "operator": "Exists"}]}


def test_the_switch_forces_monitors_on_or_off(helm):
    assert kinds(helm.render("--set", "metrics.serviceMonitor.enabled=true")) >= set(MONITORS)
    assert not kinds(helm.render("--set", "metrics.serviceMonitor.enabled=false", *SERVED)) & set(MONITORS)
    labelled = helm.render("--set", "metrics.serviceMonitor.labels.release=kube-prometheus", *SERVED)
    assert all(find(labelled, kind)["metadata"]["labels"]["release"] == "kube-prometheus" for kind in MONITORS)
    refused = helm.template("--set", "metrics.serviceMonitor.enabled=sometimes", check=False)
    assert refused.returncode != 0 and "metrics/serviceMonitor/enabled" in refused.stderr


@pytest.mark.parametrize("task", ["predict", "train"])
def test_function_pods_carry_the_label_the_pod_monitor_selects(helm, task):
    """OpenFaaS puts a Function's spec.labels on its pods: the operator's Function carries the selected label."""
    spec = {"task": task, "model": {"name": "iris"}}
    if task == "train":
        spec["training"] = {"dataset": "iris", "estimator": "LogisticRegression"}
    owner = Owner("MLFunction", "ds", "iris", "7a1c2d3e-0000-4000-8000-000000000001")
    function = build_function(owner, MLFunctionSpec.model_validate(spec), FunctionNames.for_mlfunction("ds", "iris"),
                              OperatorConfig(function_namespace="openfaas-fn"), "http://store:8080")
    (expression,) = find(helm.render(*SERVED), "PodMonitor")["spec"]["selector"]["matchExpressions"]
    assert expression["operator"] == "Exists" and expression["key"] in function["spec"]["labels"]


@pytest.fixture
def monitor_crds(install_crds, k8s):
    names = install_crds(FIXTURE, "crds", "hack/crds/openfaas.com_functions.yaml")  # --validate checks every object
    yield names
    extensions = client.ApiextensionsV1Api(k8s)
    for name in ("servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com"):
        extensions.delete_custom_resource_definition(name)


@pytest.mark.integration
def test_monitors_apply_server_side_where_the_api_is_served(helm, control_plane, k8s, monitor_crds, namespace):
    functions = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(k8s)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=functions)))
    try:
        # helm asks the real cluster what it serves: `auto` finds the CRDs
        cluster = Helm(helm.binary, control_plane.kubeconfig)
        rendered = cluster.run("template", "mlf", "charts/mlfunctions", "--namespace", namespace, "--validate",
                               "--set", f"functionNamespace={functions}", "--show-only", "templates/metrics.yaml")
        manifests = rendered.stdout
        assert "kind: ServiceMonitor" in manifests and "kind: PodMonitor" in manifests
        kubectl = [control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig)]
        for mode in (["--dry-run=server"], []):
            applied = subprocess.run([*kubectl, "apply", "--server-side", *mode, "-f", "-"], input=manifests,
                                     capture_output=True, text=True, timeout=120, check=False)
            assert applied.returncode == 0, applied.stderr
        custom = client.CustomObjectsApi(k8s)
        stored = custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", functions, "podmonitors",
                                                     "mlf-mlfunctions-functions")
        assert stored["spec"]["podMetricsEndpoints"][0]["path"] == "/_/metrics"
        assert custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "servicemonitors",
                                                   "mlf-mlfunctions-operator")["spec"]["endpoints"][0]["port"] == "metrics"
        # the fixture CRDs type what the chart renders: a malformed interval is refused by the API server
        bad = manifests.replace("interval: 30s", "interval: soon")
        refused = subprocess.run([*kubectl, "apply", "--server-side", "--dry-run=server", "-f", "-"], input=bad,
                                 capture_output=True, text=True, timeout=120, check=False)
        assert refused.returncode != 0 and "interval" in refused.stderr
    finally:
        core.delete_namespace(functions)


def test_metrics_on_a_port_of_their_own(helm):
    """operator.metricsPort: the operator gets MLFUNCTIONS_METRICS_ADDRESS on that port, the container names it
    `metrics`, and the Service (what a ServiceMonitor scrapes) points there; by default one port serves both."""
    def operator_and_service(*values: str) -> tuple[dict, dict]:
        documents = helm.render("--set", "metrics.serviceMonitor.enabled=false", *values)
        deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"].endswith(
            "-operator"))
        service = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"].endswith(
            "-operator-metrics"))
        return deployment["spec"]["template"]["spec"]["containers"][0], service["spec"]["ports"][0]

    container, port = operator_and_service()
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "MLFUNCTIONS_METRICS_ADDRESS" not in env and env["MLFUNCTIONS_HEALTH_ADDRESS"] == "0.0.0.0:8080"
    assert (port["port"], port["targetPort"]) == (8080, "health")

    container, port = operator_and_service("--set", "operator.metricsPort=9090")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFUNCTIONS_METRICS_ADDRESS"] == "0.0.0.0:9090" and env["MLFUNCTIONS_HEALTH_ADDRESS"] == "0.0.0.0:8080"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert (port["port"], port["targetPort"]) == (9090, "metrics")
    # The probes stay on the health port.
    assert container["livenessProbe"]["httpGet"]["port"] == "health"

    container, port = operator_and_service("--set", "operator.metricsPort=8080")  # the same port: one server
    assert "MLFUNCTIONS_METRICS_ADDRESS" not in {e["name"] for e in container["env"]}
    assert port["targetPort"] == "health"
