"""Pure builders of gatewayAPI mode: the FunctionDeployment is the Function in the gateway's spelling, drift is
found field by field, and OpenFaaS CE's limits are decided (table) before anything is deployed."""

from __future__ import annotations

import pytest
from mlfunctions_operator.api import MLFunctionSpec
from mlfunctions_operator.builders.edition_limits import CE_MAX_FUNCTIONS, decide
from mlfunctions_operator.builders.function import build_function
from mlfunctions_operator.builders.function_deployment import (
    as_function_status,
    build_function_deployment,
    drift,
    observe_deployment,
)
from mlfunctions_operator.builders.status import function_verdict, observe_function
from mlfunctions_operator.config import OperatorConfig
from mlfunctions_operator.naming import FunctionNames, Owner

CONFIG = OperatorConfig(function_namespace="openfaas-fn", max_cpu_per_replica="2")
OWNER = Owner("MLFunction", "team", "iris-predict", "7a1c2d3e-0000-4000-8000-000000000009")
NAMES = FunctionNames.for_mlfunction(OWNER.namespace, OWNER.name)
STORE = "http://iris-server-default.mlfunctions-system.svc:8080"
SPECS = {
    "predict-to-zero": {"task": "predict", "model": {"name": "iris"},
                        "scaling": {"minReplicas": 0, "maxReplicas": 3, "scaleToZeroAfter": "5m"},
                        "resources": {"requests": {"memory": "64Mi"}}, "env": [{"name": "A", "value": "1"}]},
    "train-scheduled": {"task": "train", "model": {"name": "iris"}, "image": "example.test/train:1",
                        "training": {"dataset": "iris", "estimator": "LogisticRegression",
                                     "schedule": "0 3 * * *"}},
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_function_either_way(name):
    spec = MLFunctionSpec.model_validate(SPECS[name])
    manifest = build_function(OWNER, spec, NAMES, CONFIG, STORE)
    function = manifest["spec"]
    deployment = build_function_deployment(OWNER, spec, NAMES, CONFIG, STORE)
    assert deployment["service"] == function["name"] == NAMES.function
    assert deployment["namespace"] == CONFIG.function_namespace
    assert deployment["image"] == function["image"]
    assert deployment["envProcess"] == function["handler"]
    assert deployment["envVars"] == function["environment"]
    # The Function's labels, plus the ownership labels its metadata carries (the gateway has no metadata).
    assert deployment["labels"] == {**OWNER.labels(), **function["labels"]}
    assert OWNER.owns({"metadata": {"labels": deployment["labels"]}})
    assert OWNER.labels().items() <= manifest["metadata"]["labels"].items()
    assert deployment["annotations"] == function["annotations"]
    assert deployment["secrets"] == function["secrets"]
    assert deployment["readOnlyRootFilesystem"] is function["readOnlyRootFilesystem"] is True
    assert deployment.get("limits") == function.get("limits") and deployment["limits"]["cpu"] == "2"
    assert deployment.get("requests") == function.get("requests")
    assert deployment["annotations"]["prometheus.io/path"] == "/_/metrics"


def _deployed(**changes) -> dict:
    spec = MLFunctionSpec.model_validate(SPECS["predict-to-zero"])
    desired = build_function_deployment(OWNER, spec, NAMES, CONFIG, STORE)
    # What a gateway reports: our fields, plus what the provider adds itself.
    actual = {**desired, "name": desired["service"], "replicas": 1, "availableReplicas": 1,
              "envVars": {**desired["envVars"], "fprocess": "python index.py"},
              "labels": {**desired["labels"], "faas_function": desired["service"]}}
    actual.update(changes)
    return desired, actual


def test_no_drift_in_what_the_provider_adds():
    desired, actual = _deployed()
    assert drift(desired, actual) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"image": "other:1"}, "image"),
    ({"envVars": {"A": "2"}}, "envVars"),
    ({"labels": {"com.openfaas.scale.max": "9"}}, "labels"),
    ({"annotations": {}}, "annotations"),
    ({"secrets": []}, "secrets"),
    ({"limits": {"memory": "1Gi"}}, "limits"),
    ({"readOnlyRootFilesystem": False}, "readOnlyRootFilesystem"),
])
def test_drift_names_the_field(change, field):
    desired, actual = _deployed(**change)
    assert drift(desired, actual) == [field]


def test_added_env_var_is_drift():
    desired, actual = _deployed()
    actual["envVars"]["EXTRA"] = "x"
    assert drift(desired, actual) == ["envVars"]


@pytest.mark.parametrize(("replicas", "available", "ready", "verdict"), [
    (1, 1, True, "Deployed"), (2, 0, False, "FunctionNotReady"), (0, 0, False, "FunctionNotReady")])
def test_readiness_from_available_replicas(replicas, available, ready, verdict):
    report = {"name": "f", "replicas": replicas, "availableReplicas": available}
    assert observe_deployment(report).ready is ready
    observation = observe_function(as_function_status(report))
    assert (observation.ready, observation.available, observation.replicas) == (ready, available, replicas)
    assert function_verdict("openfaas-fn/f", observation).reason == verdict
    assert not observe_deployment(None).reported


def _spec(**scaling) -> MLFunctionSpec:
    return MLFunctionSpec.model_validate({"task": "predict", "model": {"name": "iris"}, "scaling": scaling})


FULL = [f"fn-{i}" for i in range(CE_MAX_FUNCTIONS)]


@pytest.mark.parametrize(("edition", "namespace", "scaling", "deployed", "reason", "deploys", "min_replicas"), [
    ("standard", "team-fns", {"minReplicas": 0}, FULL, "Supported", True, 0),
    ("enterprise", "openfaas-fn", {"minReplicas": 0, "scaleToZeroAfter": "5m"}, [], "Supported", True, 0),
    ("ce", "openfaas-fn", {"minReplicas": 2}, [], "Supported", True, 2),
    ("ce", "openfaas-fn", {"minReplicas": 0, "scaleToZeroAfter": "5m"}, [], "ScaleToZeroNotSupported", True, 1),
    ("ce", "openfaas-fn", {"minReplicas": 1}, FULL, "FunctionLimitReached", False, None),
    ("ce", "openfaas-fn", {"minReplicas": 1}, FULL[:-1], "Supported", True, 1),
    ("ce", "openfaas-fn", {"minReplicas": 1}, [*FULL[:-1], "me"], "Supported", True, 1),  # already deployed
    ("ce", "team-fns", {"minReplicas": 1}, [], "NamespaceNotSupported", False, None),
])
def test_edition_limits(edition, namespace, scaling, deployed, reason, deploys, min_replicas):
    decision = decide(_spec(**scaling), edition=edition, function_namespace=namespace, function="me",
                      deployed=deployed)
    assert decision.condition.reason == reason
    assert decision.condition.status is (reason == "Supported")
    assert decision.deploy is deploys
    if deploys:
        assert decision.spec.scaling.min_replicas == min_replicas
    else:
        assert decision.stalled_reason == reason


def test_ce_scale_to_zero_is_deployed_with_min_one_and_says_so():
    decision = decide(_spec(minReplicas=0, scaleToZeroAfter="5m"), edition="ce", function_namespace="openfaas-fn",
                      function="me", deployed=[])
    labels = build_function_deployment(OWNER, decision.spec, NAMES, CONFIG, STORE)["labels"]
    assert labels["com.openfaas.scale.min"] == "1" and labels["com.openfaas.scale.zero"] == "false"
    assert "com.openfaas.scale.zero-duration" not in labels
    assert "minReplicas 1" in decision.condition.message and "scale to zero" in decision.condition.message
