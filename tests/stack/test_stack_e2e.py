"""The local stack end to end, through the gateway: MLFunctions applied → the operator writes Functions → the
runtime runs them → train → predict → idle → scaled to zero (the MLFunction's status says so) → a request →
a correct answer after a cold start; and the faas-cli calls against /system/functions.

The pieces are `make up`'s own (mlfunctions_stack.up.LocalStack), on this session's control plane, with
namespaces and a Helm release of the test's own."""

from __future__ import annotations

import pytest
import requests
import yaml
from kubernetes import client
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server
SAMPLES = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def _manifest(tmp_path, namespace: str, name: str, spec: dict):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "mlfunctions.dev/v1alpha1", "kind": "MLFunction",
                                    "metadata": {"name": name, "namespace": namespace}, "spec": spec}))
    return path


def _mlfunction(k8s, namespace: str, name: str) -> dict:
    return client.CustomObjectsApi(k8s).get_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace,
                                                                    "mlfunctions", name)


def _ready(obj: dict) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})


def test_train_predict_scale_to_zero_and_cold_start_through_the_gateway(stack, k8s, namespace, tmp_path):
    train = _manifest(tmp_path, namespace, "iris-train", {
        "task": "train", "model": {"name": "iris"},
        "training": {"dataset": "iris", "estimator": "LogisticRegression", "params": {"max_iter": 300}},
        "scaling": {"minReplicas": 0, "maxReplicas": 1}})
    predict = _manifest(tmp_path, namespace, "iris-predict", {
        "task": "predict", "model": {"name": "iris"},
        "scaling": {"minReplicas": 0, "maxReplicas": 2, "scaleToZeroAfter": "2s"}})

    [trainer] = [stack.wait_ready(m) for m in stack.apply([train])]
    trained = stack.invoke(trainer, "{}")
    assert trained.status_code == 200, trained.text
    assert trained.json()["model"] == {"name": "iris", "version": 1}
    assert trained.json()["metrics"]["accuracy"] > 0.8

    [predictor] = [stack.wait_ready(m) for m in stack.apply([predict])]
    assert predictor["status"]["url"].startswith(stack.gateway.url + "/function/")
    answer = requests.post(predictor["status"]["url"], json=SAMPLES, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == ["setosa", "virginica"]
    assert answer.json()["model"] == {"name": "iris", "version": 1}

    # Idle for 2 s: OpenFaaS (our runtime) scales it to zero and the MLFunction's status says so.
    idle = wait_for(lambda: (o := _mlfunction(k8s, namespace, "iris-predict")) and
                    _ready(o).get("reason") == "ScaledToZero" and o, timeout=60, what="ScaledToZero")
    assert _ready(idle)["status"] == "True"
    assert idle["status"]["replicas"] == 0 and idle["status"].get("availableReplicas", 0) == 0

    # The next request is held through the cold start and answered correctly.
    cold = requests.post(predictor["status"]["url"], json=SAMPLES, timeout=60)
    assert cold.status_code == 200, cold.text
    assert cold.json()["predictions"] == ["setosa", "virginica"]
    wait_for(lambda: (_mlfunction(k8s, namespace, "iris-predict").get("status") or {}).get("availableReplicas") == 1,
             timeout=30, what="the MLFunction to report the replica again")

    # faas-cli list / describe speak to the same API.
    function_namespace = f"{namespace}-fn"
    listed = requests.get(f"{stack.gateway.url}/system/functions?namespace={function_namespace}",
                          auth=stack.gateway.basic_auth, timeout=10).json()
    by_name = {f["name"]: f for f in listed}
    assert set(by_name) == {trainer["status"]["function"]["name"], predictor["status"]["function"]["name"]}
    predict_fn = by_name[predictor["status"]["function"]["name"]]
    assert predict_fn["image"] == "ghcr.io/mlfunctions/predict:0.1.0"
    assert predict_fn["labels"]["com.openfaas.scale.zero"] == "true"
    assert predict_fn["invocationCount"] >= 2
    described = requests.get(f"{stack.gateway.url}/system/function/{predict_fn['name']}?namespace={function_namespace}",
                             auth=stack.gateway.basic_auth, timeout=10)
    assert described.status_code == 200 and described.json()["availableReplicas"] == 1
