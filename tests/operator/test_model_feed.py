"""Readiness follows the model (issue 17): a predict MLFunction waiting for its model becomes Ready within 2 s of
the model's upload, and every function serving a model moves to its retrained version as fast, with the operator as the chart's ServiceAccount, a real
iris-server and the real API server. The operator here resyncs only every 10 minutes and backs off up to 5, so
nothing but the store's change feed can make these deadlines."""

from __future__ import annotations

import time

import pytest
from mlfunctions_harness.operator_process import OperatorProcess
from operator_cluster import DEFAULT_STORE, STORE, condition, fn_name
from test_operator_lifecycle import tiny_onnx_model

pytestmark = pytest.mark.integration

READY_WITHIN_SECONDS = 2.0


@pytest.fixture(scope="module")
def operator(control_plane, operator_identity, iris_store, tmp_path_factory):
    process = OperatorProcess(control_plane, operator_identity, log_path=tmp_path_factory.mktemp("op") / "log",
                              env={"MLFUNCTIONS_RESYNC_SECONDS": "600", "MLFUNCTIONS_RETRY_MAX_SECONDS": "300",
                                   "MLFUNCTIONS_DEFAULT_MODEL_STORE": DEFAULT_STORE,
                                   "MLFUNCTIONS_LOG_FORMAT": "text"})
    with process:
        yield process


def _waiting_for_its_model(objects, namespace: str, name: str, spec: dict) -> None:
    """Create a predict MLFunction, let OpenFaaS report its Function ready, and wait until the model is all it
    lacks."""
    objects.create_mlf(namespace, name, spec)
    objects.wait(lambda: objects.function(fn_name(namespace, name)), what="the Function")
    objects.report_function_status(fn_name(namespace, name), ready=True, replicas=1, available=1)
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, name)) and condition(m, "Ready").get("reason")
                       == "ModelNotFound" and m, timeout=30, what="Ready=False ModelNotFound")
    assert condition(mlf, "Reconciling")["status"] == "True"
    assert condition(mlf, "ModelAvailable")["status"] == "False"


def _ready_on_version(objects, namespace: str, name: str, version: int, since: float) -> None:
    """Wait until the MLFunction is Ready on `version`: fails READY_WITHIN_SECONDS after `since`."""
    objects.wait(lambda: (m := objects.mlf(namespace, name)) and condition(m, "Ready").get("status") == "True"
                 and (m["status"].get("model") or {}).get("version") == version
                 and condition(m, "ModelAvailable").get("status") == "True",
                 timeout=since + READY_WITHIN_SECONDS - time.monotonic(), what=f"Ready=True on model version {version}")


def test_a_newly_trained_model_makes_its_predict_function_ready_within_2s(objects, namespace, iris_store):
    model = f"fresh-{namespace}"
    _waiting_for_its_model(objects, namespace, "predict", {"task": "predict", "model": {"name": model},
                                                           "modelStore": STORE})
    iris_store.admin.claim(model, namespace)
    version = iris_store.admin.upload(model, tiny_onnx_model(), format="onnx").version
    _ready_on_version(objects, namespace, "predict", version, time.monotonic())  # from the version's existence


def test_a_retrained_version_moves_every_function_serving_the_model_within_2s(objects, namespace, iris_store):
    model = f"retrained-{namespace}"
    spec = {"task": "predict", "model": {"name": model}, "modelStore": STORE}
    for name in ("a", "b"):
        _waiting_for_its_model(objects, namespace, name, spec)
    first = iris_store.publish(model, namespace, tiny_onnx_model())
    uploaded = time.monotonic()
    for name in ("a", "b"):
        _ready_on_version(objects, namespace, name, first, uploaded)
    second = iris_store.admin.upload(model, tiny_onnx_model(), format="onnx").version
    uploaded = time.monotonic()
    for name in ("a", "b"):
        _ready_on_version(objects, namespace, name, second, uploaded)
    mlf = objects.mlf(namespace, "a")
    assert f"version {second}" in condition(mlf, "ModelAvailable")["message"]
