"""The operator on the real control plane, as the chart's ServiceAccount, with a real iris-server as the store:
create, change, heal, delete."""

from __future__ import annotations

import base64
import subprocess

import pytest
from iris_client import Forbidden, ModelStoreClient, NotFound, Unauthorized
from onnx import TensorProto, helper
from operator_cluster import FUNCTION_NAMESPACE, RESYNC_SECONDS, STORE, condition, fn_name

pytestmark = pytest.mark.integration


def tiny_onnx_model() -> bytes:
    """A valid one-node ONNX graph: enough for the store to accept it as a model version."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def predict_spec(model: str, **extra) -> dict:
    return {"task": "predict", "model": {"name": model}, "modelStore": STORE, **extra}


def token_of(objects, namespace: str, name: str) -> tuple[str, str]:
    secret = objects.secret(FUNCTION_NAMESPACE, f"{fn_name(namespace, name)}-model-store")
    return (base64.b64decode(secret.data["model-store-token"]).decode(),
            secret.metadata.annotations["mlfunctions.dev/token-id"])


def test_create_makes_every_child_and_reports_status(objects, namespace, iris_store):
    version = iris_store.publish(f"m-{namespace}", namespace, tiny_onnx_model())
    objects.create_mlf(namespace, "iris", predict_spec(f"m-{namespace}", scaling={"minReplicas": 0, "maxReplicas": 3,
                                                                                 "scaleToZeroAfter": "5m"},
                                                       resources={"requests": {"cpu": "100m"}}))
    name = fn_name(namespace, "iris")
    function = objects.wait(lambda: objects.function(name), what="the Function")
    spec = function["spec"]
    assert spec["image"] == "ghcr.io/mlfunctions/predict:0.1.0"
    assert spec["environment"]["MODEL_NAME"] == f"m-{namespace}" and spec["environment"]["TASK"] == "predict"
    assert spec["environment"]["MODEL_STORE_URL"] == iris_store.url
    assert spec["labels"]["com.openfaas.scale.zero"] == "true"
    assert spec["labels"]["com.openfaas.scale.zero-duration"] == "5m"
    assert spec["annotations"]["com.openfaas.serviceaccount"] == name
    assert spec["secrets"] == [f"{name}-model-store"] and spec["readOnlyRootFilesystem"] is True
    assert spec["requests"] == {"cpu": "100m"}
    assert function["metadata"]["labels"]["mlfunctions.dev/owner-namespace"] == namespace

    # least privilege for the function: its own ServiceAccount, bound to nothing (the kubelet mounts the Secret)
    objects.wait(lambda: objects._get(lambda: objects.core.read_namespaced_service_account(name, FUNCTION_NAMESPACE)),
                 what="the ServiceAccount")
    assert [b.metadata.name for b in objects.rbac.list_namespaced_role_binding(FUNCTION_NAMESPACE).items
            if any(s.name == name for s in b.subjects or [])] == []
    assert objects._get(lambda: objects.rbac.read_namespaced_role(name, FUNCTION_NAMESPACE)) is None

    # a scoped credential that works: reads this model, cannot write it or read another
    token, token_id = objects.wait(lambda: token_of(objects, namespace, "iris"), what="the credential")
    with ModelStoreClient(iris_store.url, token) as store:
        assert store.get_version(f"m-{namespace}").version == version
        with pytest.raises(Forbidden):
            store.upload(f"m-{namespace}", tiny_onnx_model(), format="onnx")
    assert iris_store.live_tokens(namespace, "iris") == [token_id]

    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "iris")) and condition(m, "ModelAvailable").get("status")
                       == "True" and m, what="status with the model")
    status = mlf["status"]
    assert status["observedGeneration"] == mlf["metadata"]["generation"]
    assert status["url"] == f"http://gateway.openfaas:8080/function/{name}"
    assert status["function"] == {"name": name, "namespace": FUNCTION_NAMESPACE}
    assert status["model"] == {"name": f"m-{namespace}", "version": version}
    assert condition(mlf, "Ready")["status"] == "False"          # OpenFaaS has not reported yet
    assert condition(mlf, "Reconciling")["status"] == "True"

    # OpenFaaS reports the Function ready: the MLFunction follows at once (no resync needed)
    objects.report_function_status(name, ready=True, replicas=1, available=1)
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "iris")) and condition(m, "Ready").get("status") == "True"
                       and m, timeout=RESYNC_SECONDS, what="Ready=True")
    assert condition(mlf, "Ready")["reason"] == "Deployed" and mlf["status"]["replicasSummary"] == "1/1"
    assert condition(mlf, "Reconciling")["status"] == "False" and condition(mlf, "Stalled")["status"] == "False"

    # scaled to zero still counts as Ready
    objects.report_function_status(name, ready=True, replicas=0, available=0)
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "iris")) and
                       condition(m, "Ready").get("reason") == "ScaledToZero" and m, what="ScaledToZero")
    assert condition(mlf, "Ready")["status"] == "True" and mlf["status"]["replicasSummary"] == "0 (idle)"

    # kopf posts Events from a queue of its own, after the pass that wrote the status
    objects.wait(lambda: {"Created", "Deployed"} <= {e.reason for e in objects.core.list_namespaced_event(
        namespace).items if e.involved_object.name == "iris"}, what="the Created and Deployed Events")


def test_printer_columns_and_explain(objects, namespace, control_plane):
    objects.create_mlf(namespace, "cols", predict_spec("cols"))
    objects.wait(lambda: (objects.mlf(namespace, "cols") or {}).get("status", {}).get("url"), what="status")
    kubectl = [control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig)]
    table = subprocess.run([*kubectl, "get", "mlf", "-n", namespace], check=True, capture_output=True,
                           text=True).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "TASK", "MODEL", "READY", "REPLICAS", "URL", "AGE"]
    assert row.split()[:4] == ["cols", "predict", "cols", "False"]
    explain = subprocess.run([*kubectl, "explain", "mlfunction.spec.scaling"], check=True, capture_output=True,
                             text=True).stdout
    for field in ("minReplicas", "maxReplicas", "scaleToZeroAfter", "target", "metric", "0 turns on scale to zero"):
        assert field in explain


def test_scaling_change_moves_the_labels(objects, namespace):
    objects.create_mlf(namespace, "scale", predict_spec("scale"))
    name = fn_name(namespace, "scale")
    objects.wait(lambda: objects.function(name), what="the Function")
    objects.patch_mlf(namespace, "scale", {"spec": {"scaling": {"minReplicas": 2, "maxReplicas": 8, "target": 10,
                                                                "metric": "capacity"}}})
    labels = objects.wait(lambda: (f := objects.function(name)) and f["spec"]["labels"]["com.openfaas.scale.max"]
                          == "8" and f["spec"]["labels"], what="new scaling labels")
    assert (labels["com.openfaas.scale.min"], labels["com.openfaas.scale.target"],
            labels["com.openfaas.scale.type"]) == ("2", "10", "capacity")
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "scale")) and
                       m["status"].get("observedGeneration") == m["metadata"]["generation"] and m,
                       what="observedGeneration to follow")
    assert mlf["metadata"]["generation"] == 2


def test_model_change_replaces_the_credential(objects, namespace, iris_store):
    objects.create_mlf(namespace, "swap", predict_spec(f"first-{namespace}"))
    old_token, old_id = objects.wait(lambda: objects.secret(FUNCTION_NAMESPACE, f"{fn_name(namespace, 'swap')}"
                                                                                "-model-store")
                                     and token_of(objects, namespace, "swap"), what="the first credential")
    second = f"second-{namespace}"
    objects.patch_mlf(namespace, "swap", {"spec": {"model": {"name": second}}})
    new_token, new_id = objects.wait(lambda: (t := token_of(objects, namespace, "swap"))[1] != old_id and t,
                                     what="a new credential")
    assert iris_store.live_tokens(namespace, "swap") == [new_id]   # the old one is revoked
    iris_store.publish(second, namespace, tiny_onnx_model())
    with ModelStoreClient(iris_store.url, new_token) as store:
        assert store.get_version(second).version >= 1
    with ModelStoreClient(iris_store.url, old_token) as store, pytest.raises(Unauthorized):
        store.get_version(second)
    function = objects.function(fn_name(namespace, "swap"))
    assert function["spec"]["environment"]["MODEL_NAME"] == second


def test_delete_leaves_nothing_behind(objects, namespace, iris_store):
    objects.create_mlf(namespace, "gone", predict_spec("gone"))
    name = fn_name(namespace, "gone")
    objects.wait(lambda: objects.function(name) and objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store"),
                 what="the children")
    assert len(iris_store.live_tokens(namespace, "gone")) == 1
    objects.delete_mlf(namespace, "gone")
    objects.wait(lambda: objects.mlf(namespace, "gone") is None, what="the MLFunction to go")
    assert objects.function(name) is None
    assert objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store") is None
    for read in (objects.core.read_namespaced_service_account, objects.rbac.read_namespaced_role,
                 objects.rbac.read_namespaced_role_binding):
        with pytest.raises(Exception) as error:
            read(name, FUNCTION_NAMESPACE)
        assert getattr(error.value, "status", None) == 404
    assert iris_store.live_tokens(namespace, "gone") == []


def test_deleted_or_edited_children_are_put_back(objects, namespace, iris_store):
    objects.create_mlf(namespace, "heal", predict_spec("heal"))
    name = fn_name(namespace, "heal")
    original = objects.wait(lambda: objects.function(name), what="the Function")
    objects.wait(lambda: objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store"), what="the credential")
    objects.custom.delete_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", name)
    objects.core.delete_namespaced_secret(f"{name}-model-store", FUNCTION_NAMESPACE)
    account = objects.core.read_namespaced_service_account(name, FUNCTION_NAMESPACE)
    objects.core.delete_namespaced_service_account(name, FUNCTION_NAMESPACE)
    restored = objects.wait(lambda: (f := objects.function(name)) and f["metadata"]["uid"] !=
                            original["metadata"]["uid"] and f, timeout=3 * RESYNC_SECONDS, what="a new Function")
    assert restored["spec"] == original["spec"]
    objects.wait(lambda: objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store"), timeout=3 * RESYNC_SECONDS,
                 what="a new credential")
    objects.wait(lambda: (a := objects._get(lambda: objects.core.read_namespaced_service_account(
        name, FUNCTION_NAMESPACE))) and a.metadata.uid != account.metadata.uid, timeout=3 * RESYNC_SECONDS,
        what="a new ServiceAccount")
    # the token that went with the deleted Secret is revoked: one live token, the stored one
    objects.wait(lambda: iris_store.live_tokens(namespace, "heal") == [token_of(objects, namespace, "heal")[1]],
                 what="one live token")

    # a hand edit of what the operator manages is undone
    objects.custom.patch_namespaced_custom_object(
        "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", name,
        {"spec": {"labels": {"com.openfaas.scale.max": "99"}, "image": "evil/image:latest"}},
        _content_type="application/merge-patch+json")
    objects.wait(lambda: (f := objects.function(name))["spec"]["labels"]["com.openfaas.scale.max"] == "5"
                 and f["spec"]["image"] == original["spec"]["image"], timeout=3 * RESYNC_SECONDS,
                 what="the edit to be undone")


def test_a_token_revoked_by_hand_is_replaced(objects, namespace, iris_store):
    objects.create_mlf(namespace, "revoked", predict_spec("revoked"))
    _, token_id = objects.wait(lambda: objects.secret(FUNCTION_NAMESPACE, f"{fn_name(namespace, 'revoked')}"
                                                                          "-model-store")
                               and token_of(objects, namespace, "revoked"), what="the credential")
    iris_store.admin.revoke_token(token_id)
    objects.wait(lambda: token_of(objects, namespace, "revoked")[1] != token_id, timeout=3 * RESYNC_SECONDS,
                 what="a replacement token")
    assert len(iris_store.live_tokens(namespace, "revoked")) == 1


def test_same_name_in_two_namespaces_does_not_clash(objects, k8s, namespace, iris_store):
    other = f"{namespace}-b"
    objects.core.create_namespace({"metadata": {"name": other}})
    try:
        objects.create_mlf(namespace, "twin", predict_spec("twin-a"))
        objects.create_mlf(other, "twin", predict_spec("twin-b"))
        a = objects.wait(lambda: objects.function(fn_name(namespace, "twin")), what="Function A")
        b = objects.wait(lambda: objects.function(fn_name(other, "twin")), what="Function B")
        assert a["spec"]["environment"]["MODEL_NAME"] == "twin-a" and b["spec"]["environment"]["MODEL_NAME"] == \
            "twin-b"
        token_a, token_b = token_of(objects, namespace, "twin"), token_of(objects, other, "twin")
        assert token_a != token_b
        objects.delete_mlf(other, "twin")
        objects.wait(lambda: objects.function(fn_name(other, "twin")) is None, what="Function B to go")
        objects.wait(lambda: objects.mlf(other, "twin") is None, what="MLFunction B to go")
        assert objects.function(fn_name(namespace, "twin"))["metadata"]["uid"] == a["metadata"]["uid"]
        assert token_of(objects, namespace, "twin") == token_a
        assert iris_store.live_tokens(namespace, "twin") == [token_a[1]]
    finally:
        objects.core.delete_namespace(other)


def test_model_not_found_is_reported(objects, namespace):
    objects.create_mlf(namespace, "nomodel", {**predict_spec("never-trained"), "model": {"name": "never-trained",
                                                                                         "version": 7}})
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "nomodel")) and condition(m, "Ready").get("reason")
                       == "ModelNotFound" and m, what="ModelNotFound")
    assert "version 7" in condition(mlf, "Ready")["message"]
    assert condition(mlf, "Reconciling")["status"] == "True"


def test_store_client_sees_no_model_with_a_predict_token(iris_store, objects, namespace):
    """The credential is scoped to its model: another model is invisible to it."""
    objects.create_mlf(namespace, "scoped", predict_spec("scoped"))
    token, _ = objects.wait(lambda: objects.secret(FUNCTION_NAMESPACE, f"{fn_name(namespace, 'scoped')}"
                                                                       "-model-store")
                            and token_of(objects, namespace, "scoped"), what="the credential")
    iris_store.publish(f"other-{namespace}", namespace, tiny_onnx_model())
    with ModelStoreClient(iris_store.url, token) as store, pytest.raises((Forbidden, NotFound)):
        store.get_version(f"other-{namespace}")


def test_train_function_gets_schedule_training_env_and_a_write_token(objects, namespace, iris_store):
    objects.create_mlf(namespace, "trainer", {
        "task": "train", "model": {"name": f"t-{namespace}"}, "modelStore": STORE,
        "training": {"dataset": "wine", "estimator": "RandomForestClassifier", "params": {"n_estimators": 10},
                     "schedule": "0 3 * * *"}})
    name = fn_name(namespace, "trainer")
    function = objects.wait(lambda: objects.function(name), what="the Function")
    assert function["spec"]["image"] == "ghcr.io/mlfunctions/train:0.1.0"
    assert function["spec"]["annotations"]["topic"] == "cron-function"
    assert function["spec"]["annotations"]["schedule"] == "0 3 * * *"
    env = function["spec"]["environment"]
    assert (env["TASK"], env["TRAIN_DATASET"], env["TRAIN_ESTIMATOR"], env["TRAIN_PARAMS"], env["TRAIN_TEST_SIZE"]) \
        == ("train", "wine", "RandomForestClassifier", '{"n_estimators":10}', "0.2")
    token, _ = objects.wait(lambda: objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store")
                            and token_of(objects, namespace, "trainer"), what="the credential")
    with ModelStoreClient(iris_store.url, token) as store:  # read and write on its own model
        uploaded = store.upload(f"t-{namespace}", tiny_onnx_model(), format="onnx")
        assert store.get_version(f"t-{namespace}").version == uploaded.version
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "trainer")) and
                       (m.get("status", {}).get("model") or {}).get("version") == uploaded.version and m,
                       timeout=3 * RESYNC_SECONDS, what="status.model to show the written version")
    assert condition(mlf, "ModelAvailable")["status"] == "True"


def test_reconciling_again_changes_nothing(objects, namespace, iris_store):
    iris_store.publish(f"s-{namespace}", namespace, tiny_onnx_model())
    objects.create_mlf(namespace, "steady", predict_spec(f"s-{namespace}"))
    name = fn_name(namespace, "steady")
    objects.wait(lambda: objects.function(name) and objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store")
                 and objects._get(lambda: objects.core.read_namespaced_service_account(name, FUNCTION_NAMESPACE)),
                 what="the children")
    objects.report_function_status(name, ready=True, replicas=1, available=1)
    objects.wait(lambda: condition(objects.mlf(namespace, "steady"), "Ready").get("status") == "True",
                 what="Ready")

    def versions():
        return {
            "mlfunction": objects.mlf(namespace, "steady")["metadata"]["resourceVersion"],
            "function": objects.function(name)["metadata"]["resourceVersion"],
            "secret": objects.secret(FUNCTION_NAMESPACE, f"{name}-model-store").metadata.resource_version,
            "account": objects.core.read_namespaced_service_account(name, FUNCTION_NAMESPACE).metadata
            .resource_version,
        }

    # Every pass looks the model up with the function's own token, after applying the children and before writing
    # the status. Three more lookups: the pass between the first two ran in full after `before` was taken, and the
    # one after checked every child again.
    before = versions()
    lookup = ("GET", f"/v1/models/s-{namespace}/versions/latest")
    seen = iris_store.requests(*lookup)
    objects.wait(lambda: iris_store.requests(*lookup) >= seen + 3, timeout=5 * RESYNC_SECONDS,
                 what="three more reconcile passes")
    assert versions() == before
