"""Builders: spec in, manifests out, compared with reviewed golden manifests."""

from __future__ import annotations

import base64

import pytest
from mlfunctions_operator.api import MLFunctionSpec, ModelStoreSpec
from mlfunctions_operator.builders import credentials, modelstore, rbac
from mlfunctions_operator.builders.function import build_function, environment, scaling_labels
from mlfunctions_operator.config import OperatorConfig
from mlfunctions_operator.naming import FunctionNames, Owner, StoreNames

CONFIG = OperatorConfig(function_namespace="openfaas-fn", operator_namespace="mlfunctions-system")
OWNER = Owner("MLFunction", "data-science", "iris-predict", "7a1c2d3e-0000-4000-8000-000000000001")
NAMES = FunctionNames.for_mlfunction(OWNER.namespace, OWNER.name)
STORE_URL = "http://iris-server-default.mlfunctions-system.svc:8080"

PREDICT = MLFunctionSpec.model_validate({
    "task": "predict",
    "model": {"name": "iris", "version": 3},
    "scaling": {"minReplicas": 0, "maxReplicas": 4, "scaleToZeroAfter": "10m", "target": 20, "metric": "capacity"},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi", "cpu": 1}},
    "env": [{"name": "LOG_LEVEL", "value": "debug"}],
})
TRAIN = MLFunctionSpec.model_validate({
    "task": "train",
    "model": {"name": "iris"},
    "training": {"dataset": "iris", "estimator": "LogisticRegression", "params": {"max_iter": 200, "C": 0.5},
                 "testSize": 0.25, "schedule": "0 3 * * *"},
    "image": "registry.example.com/team/iris-train:1.2.3",
})


def test_predict_function(golden):
    golden("function-predict", [build_function(OWNER, PREDICT, NAMES, CONFIG, STORE_URL)])


def test_train_function(golden):
    train_owner = Owner("MLFunction", "data-science", "iris-train", "7a1c2d3e-0000-4000-8000-000000000002")
    names = FunctionNames.for_mlfunction(train_owner.namespace, train_owner.name)
    golden("function-train", [build_function(train_owner, TRAIN, names, CONFIG, STORE_URL)])


def test_function_identity(golden):
    """A ServiceAccount and nothing else: the kubelet mounts the credential Secret, so no Role grants the pod
    anything."""
    golden("function-rbac", [rbac.build_service_account(OWNER, NAMES, "openfaas-fn")])


def test_credential_secret(golden):
    stored = credentials.StoredCredential(token="secret-token-value", token_id="0123456789abcdef",
                                          fingerprint="f" * 16)
    secret = credentials.build_credential_secret(OWNER, NAMES, "openfaas-fn", "default", stored)
    train = credentials.build_credential_secret(OWNER, NAMES, "openfaas-fn", "default", stored,
                                                credentials.invoke_digest("i" * 43))
    invoke = credentials.build_invoke_secret(OWNER, "i" * 43)
    golden("credential-secret", [secret, train, invoke])
    assert credentials.read_credential(secret) == stored == credentials.read_credential(train)
    assert credentials.read_invoke_token(invoke) == "i" * 43


def test_model_store(golden):
    owner = Owner("ModelStore", "mlfunctions-system", "default", "7a1c2d3e-0000-4000-8000-000000000003")
    names = StoreNames.for_store("default")
    spec = ModelStoreSpec.model_validate({"storage": {"size": "5Gi", "storageClassName": "fast"},
                                          "resources": {"requests": {"cpu": "50m"}}})
    golden("modelstore", [
        modelstore.build_admin_secret(owner, names, "generated-admin-token"),
        modelstore.build_claim(owner, names, spec),
        modelstore.build_service(owner, names),
        modelstore.build_deployment(owner, names, spec, "ghcr.io/mlfunctions/iris-server:0.1.0"),
    ])


def test_model_store_on_shared_backends_has_no_volume_and_rolls(golden):
    owner = Owner("ModelStore", "mlfunctions-system", "shared", "7a1c2d3e-0000-4000-8000-000000000004")
    names = StoreNames.for_store("shared")
    spec = ModelStoreSpec.model_validate({
        "replicas": 3,
        "artifacts": {"s3": {"endpoint": "http://seaweedfs.storage.svc:8333", "bucket": "models",
                             "prefix": "team-a/", "credentialsSecretRef": {"name": "s3-credentials"}}},
        "catalog": {"postgres": {"urlSecretRef": {"name": "catalog-db"}}}})
    assert not spec.needs_volume
    deployment = modelstore.build_deployment(owner, names, spec, "ghcr.io/mlfunctions/iris-server:0.1.0")
    golden("modelstore-shared-backends", [modelstore.build_disruption_budget(owner, names), deployment])
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert {"name": "data", "emptyDir": {}} in deployment["spec"]["template"]["spec"]["volumes"]


@pytest.mark.parametrize("backends", [{}, {"artifacts": {"s3": {"bucket": "models"}}},
                                      {"catalog": {"postgres": {"urlSecretRef": {"name": "db"}}}}])
def test_a_model_store_with_either_backend_on_the_volume_keeps_its_claim_and_recreates(backends):
    spec = ModelStoreSpec.model_validate(backends)
    owner = Owner("ModelStore", "mlfunctions-system", "one", "uid")
    deployment = modelstore.build_deployment(owner, StoreNames.for_store("one"), spec, "iris:1")
    assert spec.needs_volume and deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "iris-server-one-data"}}


def test_children_in_the_owners_namespace_get_an_owner_reference():
    same = Owner("MLFunction", "openfaas-fn", "iris", "uid")
    manifest = rbac.build_service_account(same, NAMES, "openfaas-fn")
    assert manifest["metadata"]["ownerReferences"] == [{
        "apiVersion": "mlfunctions.dev/v1alpha1", "kind": "MLFunction", "name": "iris", "uid": "uid",
        "controller": True, "blockOwnerDeletion": True}]
    elsewhere = rbac.build_service_account(OWNER, NAMES, "openfaas-fn")
    assert "ownerReferences" not in elsewhere["metadata"]


@pytest.mark.parametrize("scaling,expected", [
    ({}, {"min": "1", "max": "5", "zero": "false", "target": "50", "type": "rps"}),
    ({"minReplicas": 0}, {"min": "1", "max": "5", "zero": "true", "target": "50", "type": "rps"}),
    ({"minReplicas": 0, "scaleToZeroAfter": "1h"},
     {"min": "1", "max": "5", "zero": "true", "zero-duration": "1h", "target": "50", "type": "rps"}),
    ({"minReplicas": 2, "maxReplicas": 9, "target": 7, "metric": "cpu"},
     {"min": "2", "max": "9", "zero": "false", "target": "7", "type": "cpu"}),
])
def test_scaling_labels(scaling, expected):
    spec = MLFunctionSpec.model_validate({"task": "predict", "model": {"name": "m"}, "scaling": scaling})
    assert scaling_labels(spec) == {f"com.openfaas.scale.{k}": v for k, v in expected.items()}


def test_environment_tells_the_function_its_model_and_task():
    env = environment(TRAIN, CONFIG, STORE_URL)
    assert env == {
        "MODEL_NAME": "iris", "MODEL_VERSION": "", "TASK": "train", "MODEL_STORE_URL": STORE_URL,
        "TRAIN_DATASET": "iris", "TRAIN_ESTIMATOR": "LogisticRegression",
        "TRAIN_PARAMS": '{"C":0.5,"max_iter":200}', "TRAIN_TEST_SIZE": "0.25",
        "TRAIN_CALL_POLICY": '{"allowOverrides":[],"credential":"invoke-token-sha256","maxDataBytes":1048576,'
                             '"paramBounds":{},"scheduledRuns":true}',
    }
    assert environment(PREDICT, CONFIG, STORE_URL)["MODEL_VERSION"] == "3"
    assert environment(PREDICT, CONFIG, STORE_URL)["MODEL_REFRESH_SECONDS"] == "30"


def test_credential_fingerprint_changes_with_model_task_store_namespace_and_owner():
    def scope(model="iris", task="predict", namespace="data-science"):
        return credentials.token_scope(model, task, namespace)

    base = credentials.fingerprint(STORE_URL, scope(), OWNER)
    assert base == credentials.fingerprint(STORE_URL, scope(), OWNER)
    others = {
        credentials.fingerprint(STORE_URL, scope(model="wine"), OWNER),
        credentials.fingerprint(STORE_URL, scope(task="train"), OWNER),
        credentials.fingerprint(STORE_URL, scope(namespace="eve"), OWNER),
        credentials.fingerprint("http://elsewhere:8080", scope(), OWNER),
        credentials.fingerprint(STORE_URL, scope(), Owner("MLFunction", "data-science", "iris-predict", "another-uid")),
    }
    assert base not in others and len(others) == 5


def test_token_scope_is_least_privilege_and_acts_for_the_namespace():
    assert credentials.token_scope("iris", "predict", "ds") == credentials.TokenScope(("iris",), ("read",), "ds")
    assert credentials.token_scope("iris", "train", "ds") == credentials.TokenScope(("iris",), ("read", "write"), "ds")
    assert credentials.token_metadata(OWNER) == {"mlfunction": "data-science/iris-predict", "uid": OWNER.uid}


@pytest.mark.parametrize("token", [None, "", "too-short", "\udcff" * 40])
def test_an_invoke_secret_without_a_usable_token_is_refused(token):
    secret = {"metadata": {"namespace": "ds", "name": "x-invoke"},
              "data": {} if token is None else {"token": base64.b64encode(token.encode(errors="surrogateescape"))
                                                .decode()}}
    with pytest.raises(credentials.InvokeCredentialInvalid, match="ds/x-invoke"):
        credentials.read_invoke_token(secret)


def test_read_credential_ignores_secrets_that_are_not_credentials():
    assert credentials.read_credential(None) is None
    assert credentials.read_credential({"metadata": {}, "data": {}}) is None
    no_id = {"metadata": {"annotations": {}},
             "data": {"model-store-token": base64.b64encode(b"x").decode()}}
    assert credentials.read_credential(no_id) is None
