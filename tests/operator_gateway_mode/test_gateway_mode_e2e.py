"""gatewayAPI mode end to end, OpenFaaS CE's way: MLFunctions become functions deployed with the gateway's REST
API (no Function objects), invocable through it; a spec change is PUT, a change made through the gateway is put
back, a deletion removes the function; a gateway that is down, wrong credentials (cleared by correcting the
Secret's files, no restart) and what CE cannot do are said in the MLFunction's conditions. One operator for the
module; the last tests restart it with other settings."""

from __future__ import annotations

import pytest
import requests
from gateway_mode_cluster import ECHO_IMAGE, FUNCTION_NAMESPACE, RESYNC_SECONDS, STORE
from kubernetes import client
from mlfunctions_harness.processes import wait_for
from mlfunctions_operator.builders.edition_limits import CE_MAX_FUNCTIONS
from mlfunctions_operator.naming import function_name

DEPLOY_SECONDS = 90  # a train replica imports scikit-learn before it answers /_/health
TRAIN = {"task": "train", "model": {"name": "gwiris"}, "modelStore": STORE,
         "training": {"dataset": "iris", "estimator": "LogisticRegression"}}


@pytest.fixture(scope="module")
def operator(cluster):
    with cluster.operator() as process:
        yield process
    # What a failed test left is deleted while an operator runs (its finalizer needs one): never left behind,
    # terminating, for another suite's operator to find.
    custom = client.CustomObjectsApi(cluster.api)
    left = custom.list_namespaced_custom_object("mlfunctions.dev", "v1alpha1", cluster.namespace, "mlfunctions")
    if left["items"]:
        with cluster.operator():
            for item in left["items"]:
                cluster.delete_mlf(item["metadata"]["name"])
            wait_for(lambda: not custom.list_namespaced_custom_object(
                "mlfunctions.dev", "v1alpha1", cluster.namespace, "mlfunctions")["items"], timeout=60, interval=0.5,
                what="the MLFunctions a failed test left to be deleted")


def condition(obj: dict | None, type_: str) -> dict:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}.get(type_, {})


def wait_condition(cluster, name: str, type_: str, reason: str, timeout: float = DEPLOY_SECONDS) -> dict:
    def reached():
        found = condition(cluster.mlf(name), type_)
        return found if found.get("reason") == reason else None
    try:
        return wait_for(reached, timeout=timeout, interval=0.3, what=f"{name} {type_} reason {reason}")
    except TimeoutError as error:
        raise AssertionError(f"{error}; status: {(cluster.mlf(name) or {}).get('status')}") from None


def fn(cluster, name: str) -> str:
    return function_name(cluster.namespace, name)


def test_create_deploys_through_the_gateway_and_is_invocable(cluster, operator):
    cluster.create_mlf("trainer", TRAIN)
    ready = wait_condition(cluster, "trainer", "Ready", "Deployed")
    assert ready["status"] == "True"
    deployed = cluster.gateway.function(fn(cluster, "trainer"))
    assert deployed["image"] == "ghcr.io/mlfunctions/train:0.1.0" and deployed["availableReplicas"] >= 1
    assert deployed["annotations"]["prometheus.io/path"] == "/_/metrics"
    assert deployed["labels"]["com.openfaas.scale.min"] == "1"
    assert deployed["labels"]["app.kubernetes.io/managed-by"] == "mlfunctions-operator"
    status = cluster.mlf("trainer")["status"]
    assert status["url"] == f"{cluster.gateway.url}/function/{fn(cluster, 'trainer')}"
    assert status["availableReplicas"] >= 1
    assert condition(cluster.mlf("trainer"), "EditionSupported")["status"] == "True"
    health = requests.get(f"{status['url']}/_/health", timeout=30)
    assert health.status_code == 200, health.text
    # No Function object: the operator deployed through the API (the gateway's own objects are its business,
    # and they carry none of the operator's ownership labels).
    functions = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", label_selector="app.kubernetes.io/managed-by")
    assert functions["items"] == []


def test_spec_change_is_put(cluster, operator):
    cluster.patch_mlf("trainer", {"spec": {"env": [{"name": "GREETING", "value": "hello"}]}})
    wait_for(lambda: (cluster.gateway.function(fn(cluster, "trainer")) or {}).get("envVars", {}).get("GREETING")
             == "hello", timeout=30, interval=0.3, what="the env change to reach the gateway")


def test_drift_through_the_gateway_is_put_back(cluster, operator):
    name = fn(cluster, "trainer")
    current = cluster.gateway.function(name)
    tampered = {"service": name, "image": current["image"], "namespace": FUNCTION_NAMESPACE,
                "envProcess": current.get("envProcess"), "envVars": {**current["envVars"], "GREETING": "changed"},
                "labels": current["labels"], "annotations": current["annotations"], "secrets": current["secrets"],
                "readOnlyRootFilesystem": True}
    response = requests.put(f"{cluster.gateway.url}/system/functions", json=tampered, auth=cluster.gateway.auth,
                            timeout=30)
    assert response.status_code == 202, response.text
    assert cluster.gateway.function(name)["envVars"]["GREETING"] == "changed"
    wait_for(lambda: cluster.gateway.function(name)["envVars"].get("GREETING") == "hello",
             timeout=RESYNC_SECONDS * 2 + 20, interval=0.3, what="the operator to put the env back")


def test_scale_to_zero_is_deployed_with_min_one_and_said(cluster, operator):
    cluster.create_mlf("idler", {**TRAIN, "scaling": {"minReplicas": 0, "scaleToZeroAfter": "5m"}})
    edition = wait_condition(cluster, "idler", "EditionSupported", "ScaleToZeroNotSupported")
    assert edition["status"] == "False"
    assert "minReplicas 1" in edition["message"] and "scale to zero" in edition["message"]
    labels = wait_for(lambda: (cluster.gateway.function(fn(cluster, "idler")) or {}).get("labels"), timeout=30,
                      interval=0.3, what="the idler to be deployed")
    assert labels["com.openfaas.scale.min"] == "1" and labels["com.openfaas.scale.zero"] == "false"
    cluster.delete_mlf("idler")
    wait_for(lambda: cluster.mlf("idler") is None, timeout=30, interval=0.3, what="idler to be deleted")


def test_sixteenth_function_is_not_deployed(cluster, operator):
    present = {f["name"] for f in cluster.gateway.functions()}
    fillers = [f"filler-{i}" for i in range(CE_MAX_FUNCTIONS - len(present))]
    for name in fillers:
        response = requests.post(f"{cluster.gateway.url}/system/functions", auth=cluster.gateway.auth, timeout=30,
                                 json={"service": name, "image": ECHO_IMAGE, "namespace": FUNCTION_NAMESPACE})
        assert response.status_code == 202, response.text
    try:
        assert len(cluster.gateway.functions()) == CE_MAX_FUNCTIONS
        cluster.create_mlf("one-too-many", TRAIN)
        edition = wait_condition(cluster, "one-too-many", "EditionSupported", "FunctionLimitReached")
        assert f"at most {CE_MAX_FUNCTIONS} functions" in edition["message"] and "limit reached" in edition["message"]
        assert condition(cluster.mlf("one-too-many"), "Stalled")["status"] == "True"
        assert cluster.gateway.function(fn(cluster, "one-too-many")) is None
    finally:
        for name in fillers:
            requests.delete(f"{cluster.gateway.url}/system/functions", auth=cluster.gateway.auth, timeout=30,
                            json={"functionName": name, "namespace": FUNCTION_NAMESPACE})
    # Room again: the next resync deploys it.
    wait_condition(cluster, "one-too-many", "EditionSupported", "Supported", timeout=30)
    cluster.delete_mlf("one-too-many")
    wait_for(lambda: cluster.gateway.function(fn(cluster, "one-too-many")) is None, timeout=30, interval=0.3,
             what="one-too-many to be removed")


def test_someone_elses_function_is_not_taken_over(cluster, operator):
    name = fn(cluster, "taken")
    theirs = {"service": name, "image": ECHO_IMAGE, "namespace": FUNCTION_NAMESPACE, "labels": {"team": "other"}}
    response = requests.post(f"{cluster.gateway.url}/system/functions", json=theirs, auth=cluster.gateway.auth,
                             timeout=30)
    assert response.status_code == 202, response.text
    try:
        cluster.create_mlf("taken", TRAIN)
        stalled = wait_condition(cluster, "taken", "Stalled", "NotOwned", timeout=30)
        assert name in stalled["message"] and "not created by mlfunctions-operator" in stalled["message"]
        assert cluster.gateway.function(name)["image"] == ECHO_IMAGE
        cluster.delete_mlf("taken")  # its deletion leaves their function alone
        wait_for(lambda: cluster.mlf("taken") is None, timeout=30, interval=0.3, what="taken to be deleted")
        assert cluster.gateway.function(name)["image"] == ECHO_IMAGE
    finally:
        requests.delete(f"{cluster.gateway.url}/system/functions", auth=cluster.gateway.auth, timeout=30,
                        json={"functionName": name, "namespace": FUNCTION_NAMESPACE})


def test_gateway_down_is_said_then_recovers(cluster, operator):
    cluster.gateway.stop()
    try:
        ready = wait_condition(cluster, "trainer", "Ready", "GatewayUnavailable", timeout=RESYNC_SECONDS * 3 + 30)
        assert cluster.gateway.url in ready["message"] and ready["status"] == "False"
    finally:
        cluster.gateway.start()
    wait_condition(cluster, "trainer", "Ready", "Deployed")


def test_delete_removes_the_function(cluster, operator):
    name = fn(cluster, "trainer")
    cluster.delete_mlf("trainer")
    wait_for(lambda: cluster.mlf("trainer") is None, timeout=30, interval=0.3, what="the finalizer to finish")
    assert cluster.gateway.function(name) is None


def test_corrected_credentials_are_used_without_a_restart(cluster, operator):
    """Wrong credentials in the Secret: GatewayUnauthorized. The Secret corrected (its volume updated the
    kubelet's way: new directory, ..data swapped): the same operator process deploys the function."""
    operator.stop()
    secret = cluster.secret_volume(password="not-the-password")
    with cluster.operator(credentials=secret) as process:
        pid = process.pid
        cluster.create_mlf("locked-out", TRAIN)
        ready = wait_condition(cluster, "locked-out", "Ready", "GatewayUnauthorized", timeout=30)
        assert "unauthorized" in ready["message"] and cluster.gateway.url in ready["message"]
        assert condition(cluster.mlf("locked-out"), "Stalled")["status"] == "True"
        assert cluster.gateway.function(fn(cluster, "locked-out")) is None

        secret.write({"basic-auth-user": cluster.gateway.auth[0], "basic-auth-password": cluster.gateway.auth[1]})
        wait_condition(cluster, "locked-out", "Ready", "Deployed")
        assert process.pid == pid and process.process.poll() is None  # no restart
        assert condition(cluster.mlf("locked-out"), "Stalled").get("status") != "True"
        assert cluster.gateway.function(fn(cluster, "locked-out"))["availableReplicas"] >= 1
        cluster.delete_mlf("locked-out")  # deleting it cleans up, with the corrected credentials
        wait_for(lambda: cluster.mlf("locked-out") is None, timeout=30, interval=0.3, what="locked-out deleted")
    assert cluster.gateway.function(fn(cluster, "locked-out")) is None


def test_another_namespace_is_not_deployed(cluster, k8s):
    other = f"{cluster.namespace}-fns"
    client.CoreV1Api(k8s).create_namespace({"metadata": {"name": other}})
    try:
        with cluster.operator(MLFUNCTIONS_FUNCTION_NAMESPACE=other):
            cluster.create_mlf("elsewhere", TRAIN)
            edition = wait_condition(cluster, "elsewhere", "EditionSupported", "NamespaceNotSupported", timeout=30)
            assert f"only to namespace {FUNCTION_NAMESPACE}" in edition["message"] and other in edition["message"]
            assert condition(cluster.mlf("elsewhere"), "Ready")["reason"] == "NamespaceNotSupported"
        # Deleted under the operator the chart's RBAC was rendered for (it holds no Role in `other`): nothing was
        # created for it, so its finalizer has nothing to remove.
        with cluster.operator():
            cluster.delete_mlf("elsewhere")
            wait_for(lambda: cluster.mlf("elsewhere") is None, timeout=30, interval=0.3, what="elsewhere deleted")
    finally:
        client.CoreV1Api(k8s).delete_namespace(other)
