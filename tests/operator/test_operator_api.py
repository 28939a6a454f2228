"""The pydantic models validate what the CRD validates (the operator re-checks what it reads) and the config."""

from __future__ import annotations

import pytest
from mlfunctions_operator.api import MLFunctionSpec, ModelStoreSpec
from mlfunctions_operator.config import OperatorConfig
from pydantic import ValidationError


def test_defaults_match_the_contract():
    spec = MLFunctionSpec.model_validate({"task": "predict", "model": {"name": "iris"}})
    assert (spec.scaling.min_replicas, spec.scaling.max_replicas, spec.scaling.target, spec.scaling.metric) == \
        (1, 5, 50, "rps")
    assert spec.model.version is None and spec.env == [] and spec.model_store is None
    train = MLFunctionSpec.model_validate({"task": "train", "model": {"name": "iris"},
                                           "training": {"dataset": "wine", "estimator": "SVC"}})
    assert train.training.test_size == 0.2 and train.training.params == {}


@pytest.mark.parametrize("spec", [
    {"task": "serve", "model": {"name": "iris"}},
    {"task": "predict", "model": {"name": "Iris"}},
    {"task": "predict", "model": {"name": "iris", "version": 0}},
    {"task": "predict", "model": {"name": "iris"}, "scaling": {"maxReplicas": 0}},
    {"task": "predict", "model": {"name": "iris"}, "scaling": {"scaleToZeroAfter": "soon"}},
    {"task": "predict", "model": {"name": "iris"}, "scaling": {"minReplicas": 0, "scaleToZeroAfter": "0s"}},
    {"task": "predict", "model": {"name": "iris"}, "scaling": {"minReplicas": 0, "scaleToZeroAfter": "1d"}},
    {"task": "train", "model": {"name": "iris"}, "training": {"dataset": "mnist", "estimator": "SVC"}},
    {"task": "train", "model": {"name": "iris"}, "training": {"dataset": "iris", "estimator": "SVC",
                                                              "testSize": 1}},
    {"task": "predict", "model": {"name": "iris"}, "resources": {"requests": {"memory": "lots"}}},
])
def test_invalid_specs_are_refused(spec):
    with pytest.raises(ValidationError):
        MLFunctionSpec.model_validate(spec)


def test_modelstore_spec():
    spec = ModelStoreSpec.model_validate({})
    assert spec.replicas == 1 and spec.storage.size == "1Gi" and spec.external is None
    external = ModelStoreSpec.model_validate({"external": {"url": "http://iris:8080",
                                                           "adminTokenSecretRef": {"name": "iris-admin"}}})
    assert external.external.admin_token_secret_ref.key == "admin-token"
    with pytest.raises(ValidationError):
        ModelStoreSpec.model_validate({"external": {"url": "ftp://x", "adminTokenSecretRef": {"name": "s"}}})


def test_config_from_environment(monkeypatch):
    monkeypatch.setenv("MLFUNCTIONS_FUNCTION_NAMESPACE", "fns")
    monkeypatch.setenv("MLFUNCTIONS_RESYNC_SECONDS", "12.5")
    monkeypatch.setenv("MLFUNCTIONS_CREATE_DEFAULT_MODEL_STORE", "false")
    config = OperatorConfig()
    assert (config.function_namespace, config.resync_seconds, config.create_default_model_store) == \
        ("fns", 12.5, False)
    assert config.gateway_url == "http://gateway.openfaas:8080"
    monkeypatch.setenv("MLFUNCTIONS_RESYNC_SECONDS", "-1")
    with pytest.raises(ValidationError):
        OperatorConfig()
