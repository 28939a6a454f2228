"""Bad manifests: what the schema can judge, the API server rejects naming the field; what only the operator can
judge (a missing or unreachable store, an object it does not own) becomes Stalled or Reconciling with a message,
retried with back-off, never in a hot loop."""

from __future__ import annotations

import itertools
import json

import pytest
from faulty_store import FaultyStore
from kubernetes.client.rest import ApiException
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from operator_cluster import (
    ADMIN_TOKEN,
    FUNCTION_NAMESPACE,
    GROUP,
    OPERATOR_NAMESPACE,
    STORE,
    VERSION,
    condition,
    fn_name,
)

pytestmark = pytest.mark.integration

BASE = {"task": "predict", "model": {"name": "iris"}, "modelStore": STORE}
TRAIN = {"task": "train", "model": {"name": "iris"}, "modelStore": STORE,
         "training": {"dataset": "iris", "estimator": "LogisticRegression"}}


def with_(base: dict, **changes) -> dict:
    return {**json.loads(json.dumps(base)), **changes}


REJECTED = [
    # (case, metadata.name, spec, the field the API server must name)
    ("task missing", "m", {"model": {"name": "iris"}}, "spec.task"),
    ("unknown task", "m", with_(BASE, task="serve"), "spec.task"),
    ("model name not a DNS label", "m", with_(BASE, model={"name": "Iris_Model"}), "spec.model.name"),
    ("model version 0", "m", with_(BASE, model={"name": "iris", "version": 0}), "spec.model.version"),
    ("train without training", "m", with_(TRAIN, training=None), "spec.training"),
    ("predict with training", "m", with_(BASE, training=TRAIN["training"]), "spec.training"),
    ("minReplicas above maxReplicas", "m", with_(BASE, scaling={"minReplicas": 3, "maxReplicas": 2}),
     "spec.scaling.minReplicas"),
    ("maxReplicas 0", "m", with_(BASE, scaling={"minReplicas": 0, "maxReplicas": 0}), "spec.scaling.maxReplicas"),
    ("scaleToZeroAfter without minReplicas 0", "m", with_(BASE, scaling={"scaleToZeroAfter": "10m"}),
     "spec.scaling.scaleToZeroAfter"),
    ("scaleToZeroAfter not a duration", "m", with_(BASE, scaling={"minReplicas": 0, "scaleToZeroAfter": "10 min"}),
     "spec.scaling.scaleToZeroAfter"),
    ("unknown metric", "m", with_(BASE, scaling={"metric": "memory"}), "spec.scaling.metric"),
    ("estimator not allowed", "m", with_(TRAIN, training={"dataset": "iris", "estimator": "os.system"}),
     "spec.training.estimator"),
    ("classifier for a regression dataset", "m",
     with_(TRAIN, training={"dataset": "diabetes", "estimator": "LogisticRegression"}), "spec.training.estimator"),
    ("testSize not in (0, 1)", "m", with_(TRAIN, training={**TRAIN["training"], "testSize": 1.5}),
     "spec.training.testSize"),
    ("schedule not cron", "m", with_(TRAIN, training={**TRAIN["training"], "schedule": "every night"}),
     "spec.training.schedule"),
    ("env sets a reserved variable", "m", with_(BASE, env=[{"name": "MODEL_NAME", "value": "x"}]), "spec.env"),
    ("env name twice", "m", with_(BASE, env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
     "spec.env[1]"),
    ("requests above limits", "m", with_(BASE, resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
     "spec.resources.requests.cpu"),
    ("memory not a quantity", "m", with_(BASE, resources={"limits": {"memory": "lots"}}),
     "spec.resources.limits.memory"),
    ("name too long for a Function", "n" * 64, BASE, "metadata.name"),
    ("name with dots", "my.function", BASE, "metadata.name"),
]


@pytest.mark.parametrize("case,name,spec,field", REJECTED, ids=[c[0] for c in REJECTED])
def test_the_api_server_rejects_naming_the_field(objects, namespace, case, name, spec, field):
    spec = {k: v for k, v in spec.items() if v is not None}
    with pytest.raises(ApiException) as error:
        objects.create_mlf(namespace, name, spec)
    assert error.value.status == 422, error.value.body
    message = json.loads(error.value.body)["message"]
    assert field in message, f"{case}: {field!r} not named in {message!r}"


def wait_condition(objects, namespace, name, type_, reason, timeout=20.0) -> dict:
    return objects.wait(lambda: (m := objects.mlf(namespace, name)) and
                        condition(m, type_).get("reason") == reason and condition(m, type_), timeout=timeout,
                        what=f"{type_} reason {reason}")


def test_missing_store_is_stalled_naming_the_field(objects, namespace):
    objects.create_mlf(namespace, "nostore", with_(BASE, modelStore="no-such-store"))
    stalled = wait_condition(objects, namespace, "nostore", "Stalled", "ModelStoreNotFound")
    assert stalled["status"] == "True"
    assert "spec.modelStore" in stalled["message"] and "no-such-store" in stalled["message"]
    assert condition(objects.mlf(namespace, "nostore"), "Ready")["status"] == "False"
    # kopf posts Events from a queue of its own, after the pass that wrote the status
    objects.wait(lambda: any(e.reason == "ModelStoreNotFound" and e.type == "Warning"
                             for e in objects.core.list_namespaced_event(namespace).items), what="the Warning Event")


def test_foreign_object_is_never_adopted(objects, namespace):
    name = fn_name(namespace, "taken")
    foreign = {"apiVersion": "openfaas.com/v1", "kind": "Function",
               "metadata": {"name": name, "labels": {"team": "someone-else"}},
               "spec": {"name": name, "image": "someone/else:1"}}
    objects.custom.create_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", foreign)
    try:
        objects.create_mlf(namespace, "taken", BASE)
        stalled = wait_condition(objects, namespace, "taken", "Stalled", "NotOwned")
        assert f"Function {FUNCTION_NAMESPACE}/{name}" in stalled["message"]
        # A spec change makes the operator reconcile again, and the status says when that pass is done.
        generation = objects.patch_mlf(namespace, "taken", {"spec": {"scaling": {"target": 7}}})["metadata"][
            "generation"]
        objects.wait(lambda: condition(objects.mlf(namespace, "taken"), "Stalled").get("observedGeneration") ==
                     generation, what="a pass over the new generation")
        untouched = objects.function(name)
        assert untouched["spec"] == foreign["spec"] and untouched["metadata"]["labels"] == {"team": "someone-else"}
        # deleting the MLFunction must not delete what it does not own
        objects.delete_mlf(namespace, "taken")
        objects.wait(lambda: objects.mlf(namespace, "taken") is None, what="the MLFunction to go")
        assert objects.function(name)["metadata"]["uid"] == untouched["metadata"]["uid"]
    finally:
        objects.custom.delete_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", name)


def test_store_down_backs_off_and_recovers_without_restart(objects, namespace, tmp_path):
    listener = FaultyStore("drop")  # takes each request in and drops the connection: a store that is down
    store = f"down-{namespace}"
    objects.custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": store},
        "spec": {"external": {"url": listener.url, "adminTokenSecretRef": {"name": "iris-admin"}},
                 "namespaces": [namespace]}})
    process = None
    try:
        objects.create_mlf(namespace, "waiting", with_(BASE, modelStore=store))
        reconciling = wait_condition(objects, namespace, "waiting", "Reconciling", "ModelStoreUnavailable")
        assert reconciling["status"] == "True" and f"127.0.0.1:{listener.port}" in reconciling["message"]
        mlf = objects.mlf(namespace, "waiting")
        assert condition(mlf, "Stalled")["status"] == "False" and condition(mlf, "Ready")["status"] == "False"
        # The MLFunction asks for a token (POST), the ModelStore checks its admin token (GET), each retrying on
        # its own back-off (2, 4, 8 s): the gaps between attempts grow, never a hot loop.
        for method, who in (("POST", "the MLFunction"), ("GET", "the ModelStore")):
            attempts = objects.wait(lambda m=method: (seen := listener.seen(m, "/v1/tokens"))[2:] and seen,
                                    timeout=30, what=f"three attempts of {who}")
            gaps = [round(b.at - a.at, 2) for a, b in itertools.pairwise(attempts)]
            assert min(gaps) >= 1.5 and gaps[-1] >= 3.5, f"{who} retried after {gaps} s: no back-off"
            assert all(later >= earlier - 0.5 for earlier, later in itertools.pairwise(gaps)), gaps
        # the store comes up on the same address: the function converges, the operator was never restarted
        listener.close()
        _, process = start_iris_server(tmp_path / "store", admin_token=ADMIN_TOKEN, port=listener.port)
        objects.wait(lambda: objects.function(fn_name(namespace, "waiting")), timeout=20, what="the Function")
        mlf = objects.wait(lambda: (m := objects.mlf(namespace, "waiting")) and
                           condition(m, "Reconciling").get("reason") != "ModelStoreUnavailable" and m, timeout=20,
                           what="recovery")
        assert condition(mlf, "Stalled")["status"] == "False"
    finally:
        listener.close()
        objects.delete_mlf(namespace, "waiting")
        objects.wait(lambda: objects.mlf(namespace, "waiting") is None, what="the MLFunction to go")
        objects.custom.delete_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", store)
        if process:
            stop_iris_server(process)
