"""The runtime against a real kube-apiserver: it runs Function resources, writes their status the way OpenFaaS
Pro does, projects their Secrets, and the gateway's /system API writes Function resources. The runtime acts
as a ServiceAccount with only the rights in local_openfaas.runtime.rbac."""

from __future__ import annotations

import base64

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_support import ECHO_IMAGE
from mlfunctions_harness.processes import pid_alive, wait_for

pytestmark = pytest.mark.server
GROUP, VERSION, PLURAL = "openfaas.com", "v1", "functions"


def _function(name: str, env=None, labels=None, secrets=None, image=ECHO_IMAGE) -> dict:
    spec = {"name": name, "image": image, "environment": env or {}, "labels": labels or {}}
    if secrets:
        spec["secrets"] = secrets
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Function", "metadata": {"name": name}, "spec": spec}


def _get(k8s, namespace, name) -> dict:
    return client.CustomObjectsApi(k8s).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def _condition(obj: dict, kind: str) -> tuple[str, str] | None:
    for condition in (obj.get("status") or {}).get("conditions", []):
        if condition["type"] == kind:
            return condition["status"], condition["reason"]
    return None


def _secret(k8s, namespace, name, data: dict[str, str]) -> None:
    client.CoreV1Api(k8s).create_namespaced_secret(namespace, {
        "metadata": {"name": name}, "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def test_function_resource_runs_with_its_secret_and_reports_status(k8s, namespace, kube_gateway):
    _secret(k8s, namespace, "echo-token", {"model-store-token": "t0ken"})
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _function("echo", env={"ECHO_X": "1"}, secrets=["echo-token"]))

    ready = wait_for(lambda: (o := _get(k8s, namespace, "echo")) and _condition(o, "Ready") == ("True", "Available")
                     and o, what="Ready=True")
    assert _condition(ready, "Healthy") == ("True", "Available")
    assert ready["status"]["replicas"] == 1 and ready["status"]["availableReplicas"] == 1
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]

    answer = requests.get(f"{kube_gateway.url}/function/echo.{namespace}", timeout=30).json()
    assert answer["env"] == {"ECHO_X": "1"}
    assert answer["secrets"] == {"model-store-token": "t0ken"}  # as OpenFaaS mounts /var/openfaas/secrets

    client.CustomObjectsApi(k8s).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "echo")
    wait_for(lambda: not pid_alive(answer["pid"]), what="the deleted function's replica to stop")


def test_scaled_to_zero_is_ready_not_healthy_and_wakes_on_a_request(k8s, namespace, kube_gateway):
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "1s"}
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _function("sleepy", labels=labels))
    idle = wait_for(lambda: (o := _get(k8s, namespace, "sleepy")) and _condition(o, "Ready") == ("True", "ScaledToZero")
                    and o, what="scaled to zero")
    assert _condition(idle, "Healthy") == ("False", "ScaledToZero")
    assert idle["status"]["replicas"] == 0 and idle["status"]["availableReplicas"] == 0

    # The gateway's default namespace is the test's: plain /function/<name> works too.
    assert requests.get(f"{kube_gateway.url}/function/sleepy", timeout=30).status_code == 200
    wait_for(lambda: _condition(_get(k8s, namespace, "sleepy"), "Healthy") == ("True", "Available"),
             what="Healthy=True after the cold start")


def test_a_missing_secret_stalls_the_function_until_it_exists(k8s, namespace, kube_gateway):
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _function("needy", secrets=["later"]))
    stalled = wait_for(lambda: (o := _get(k8s, namespace, "needy")) and _condition(o, "Stalled") == (
        "True", "CrashLoopBackOff") and o, what="Stalled=True")
    message = {c["type"]: c["message"] for c in stalled["status"]["conditions"]}["Ready"]
    assert "secret later not found" in message
    _secret(k8s, namespace, "later", {"k": "v"})
    wait_for(lambda: _condition(_get(k8s, namespace, "needy"), "Ready") == ("True", "Available"), timeout=30,
             what="recovery once the secret exists")


def test_an_image_that_no_function_folder_provides_is_reported(k8s, namespace, kube_gateway):
    client.CustomObjectsApi(k8s).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _function("ghost", image="registry.example/ghost:1"))
    failed = wait_for(lambda: (o := _get(k8s, namespace, "ghost")) and _condition(o, "Stalled") == (
        "True", "DeploymentFailed") and o, what="Stalled=True")
    assert "registry.example/ghost:1" in {c["type"]: c["message"] for c in failed["status"]["conditions"]}["Stalled"]


def test_system_api_writes_function_resources(k8s, namespace, kube_gateway):
    auth = kube_gateway.basic_auth
    body = {"service": "viaapi", "image": ECHO_IMAGE, "namespace": namespace, "envVars": {"ECHO_V": "1"},
            "labels": {"com.openfaas.scale.max": "3"}}
    assert requests.post(kube_gateway.url + "/system/functions", json=body, auth=auth, timeout=30).status_code == 202
    created = _get(k8s, namespace, "viaapi")
    assert created["spec"]["environment"] == {"ECHO_V": "1"} and created["spec"]["image"] == ECHO_IMAGE
    described = requests.get(f"{kube_gateway.url}/system/function/viaapi?namespace={namespace}", auth=auth,
                             timeout=5).json()
    assert described["name"] == "viaapi" and described["envVars"] == {"ECHO_V": "1"}
    assert requests.post(kube_gateway.url + "/system/functions", json=body, auth=auth, timeout=30).status_code == 409

    body["envVars"] = {"ECHO_V": "2"}
    assert requests.put(kube_gateway.url + "/system/functions", json=body, auth=auth, timeout=30).status_code == 202
    assert _get(k8s, namespace, "viaapi")["spec"]["environment"] == {"ECHO_V": "2"}
    wait_for(lambda: requests.get(f"{kube_gateway.url}/function/viaapi.{namespace}", timeout=30).json()["env"]
             == {"ECHO_V": "2"}, what="the update to be served")

    deleted = requests.delete(kube_gateway.url + "/system/functions", json={"functionName": "viaapi",
                                                                           "namespace": namespace},
                              auth=auth, timeout=30)
    assert deleted.status_code == 202
    with pytest.raises(ApiException) as gone:
        _get(k8s, namespace, "viaapi")
    assert gone.value.status == 404
    assert requests.get(f"{kube_gateway.url}/function/viaapi.{namespace}", timeout=5).status_code == 404


def test_deploying_into_a_namespace_that_does_not_exist_is_a_400(kube_gateway):
    body = {"service": "x", "image": ECHO_IMAGE, "namespace": "no-such-namespace"}
    response = requests.post(kube_gateway.url + "/system/functions", json=body, auth=kube_gateway.basic_auth,
                             timeout=30)
    assert response.status_code == 400
    assert "no-such-namespace" in response.json()["message"]
