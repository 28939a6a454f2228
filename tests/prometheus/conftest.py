"""One stack and one Prometheus for the package's tests: `make up`'s own pieces (LocalStack) on the session's
control plane, the operator as its ServiceAccount under the chart's RBAC (as tests/stack/test_stack_e2e.py does),
and the real Prometheus scraping all of it. The workload (train, predict, a cold start) runs once here, so every
test asks Prometheus about the same history."""

from __future__ import annotations

import pytest
import requests
import yaml
from kubernetes import client
from mlfunctions_harness.mlfunction_cleanup import delete_mlfunctions
from mlfunctions_harness.processes import free_port, wait_for
from mlfunctions_stack.up import LocalStack

SAMPLES = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def _manifest(folder, namespace: str, name: str, spec: dict):
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "mlfunctions.dev/v1alpha1", "kind": "MLFunction",
                                    "metadata": {"name": name, "namespace": namespace}, "spec": spec}))
    return path


def _ready_reason(k8s, namespace: str, name: str) -> str | None:
    obj = client.CustomObjectsApi(k8s).get_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace,
                                                                    "mlfunctions", name)
    ready = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Ready"]
    return ready[0].get("reason") if ready else None


@pytest.fixture(scope="package")
def observed(control_plane, tmp_path_factory):
    """The running stack, its Prometheus, and what was done to it: {"stack", "prometheus", "trainer",
    "predictor" (always up), "cold_predictor" (scaled to zero and started again), "calls": {function_name:
    number of 200 answers}, "version": the trained version}."""
    namespace = f"prom-{free_port()}"
    folder = tmp_path_factory.mktemp("prometheus")
    k8s = control_plane.api_client()
    client.CoreV1Api(k8s).create_namespace({"metadata": {"name": namespace}})
    local = LocalStack(control_plane, folder / "stack", gateway_port=free_port(), store_port=free_port(),
                       operator_namespace=f"{namespace}-sys", function_namespace=f"{namespace}-fn",
                       release=f"prom-{namespace[-5:]}")
    try:
        local.install()
        store_url, token_file = local.start_model_store()
        local.start_operator(local.install_operator_rbac(store_url, token_file))
        local.gateway = local.start_gateway()
        metrics = local.start_prometheus()

        train = _manifest(folder, namespace, "iris-train", {
            "task": "train", "model": {"name": "iris"},
            "training": {"dataset": "iris", "estimator": "LogisticRegression", "params": {"max_iter": 300}},
            "scaling": {"minReplicas": 0, "maxReplicas": 1}})
        predict = _manifest(folder, namespace, "iris-predict", {
            "task": "predict", "model": {"name": "iris"}, "scaling": {"minReplicas": 1, "maxReplicas": 1}})
        # Its own function for the cold start: it scales to zero again 2 s after each call, so the one above
        # is what stays up for the tests to scrape.
        cold_predict = _manifest(folder, namespace, "iris-predict-cold", {
            "task": "predict", "model": {"name": "iris"},
            "scaling": {"minReplicas": 0, "maxReplicas": 1, "scaleToZeroAfter": "2s"}})
        [trainer] = [local.wait_ready(m) for m in local.apply([train])]
        trained = local.invoke(trainer, "{}")
        assert trained.status_code == 200, trained.text
        version = trained.json()["model"]["version"]
        predictor, cold_predictor = [local.wait_ready(m) for m in local.apply([predict, cold_predict])]
        calls = {_function_name(trainer): 1, _function_name(predictor): 0, _function_name(cold_predictor): 0}
        for mlfunction in (predictor, predictor, predictor, cold_predictor):
            answer = requests.post(mlfunction["status"]["url"], json=SAMPLES, timeout=60)
            assert answer.status_code == 200, answer.text
            calls[_function_name(mlfunction)] += 1
        # Idle past scaleToZeroAfter, then one more call: a cold start the gateway counts and times.
        wait_for(lambda: _ready_reason(k8s, namespace, "iris-predict-cold") == "ScaledToZero", timeout=60,
                 what="iris-predict-cold to scale to zero")
        cold = requests.post(cold_predictor["status"]["url"], json=SAMPLES, timeout=60)
        assert cold.status_code == 200, cold.text
        calls[_function_name(cold_predictor)] += 1
        # One request the model store refuses (headers over its 32 KiB limit: 431), so its refusal counter has
        # a sample too.
        refused = requests.get(f"{store_url}/readyz", headers={"X-Padding": "x" * 64 * 1024}, timeout=10)
        assert refused.status_code == 431, refused.text
        yield {"stack": local, "prometheus": metrics, "trainer": trainer, "predictor": predictor,
               "cold_predictor": cold_predictor, "calls": calls, "version": version}
    finally:
        delete_mlfunctions(k8s, namespace, timeout=120)
        local.close()
        for extra in (namespace, f"{namespace}-sys", f"{namespace}-fn"):
            client.CoreV1Api(k8s).delete_namespace(extra)
        k8s.close()


def _function_name(mlfunction: dict) -> str:
    """The gateway's function_name label: <Function name>.<namespace>."""
    function = mlfunction["status"]["function"]
    return f"{function['name']}.{function['namespace']}"
