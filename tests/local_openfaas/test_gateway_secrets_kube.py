"""/system/secrets on a gateway bound to the real kube-apiserver (as the runtime's ServiceAccount): each secret is
a Kubernetes Secret in the function namespace as faas-netes writes it (one key named after it, labelled
app.kubernetes.io/managed-by=openfaas), listed without values, and the namespace's other Secrets are out of reach."""

from __future__ import annotations

import base64

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.server


def _secrets(gw, method: str, namespace: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, gw.url + "/system/secrets", json=body, params={"namespace": namespace},
                            auth=gw.basic_auth, timeout=30)


def test_secrets_are_kubernetes_secrets_in_the_function_namespace(k8s, namespace, kube_gateway):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "not-ours"},
                                              "data": {"k": base64.b64encode(b"kept").decode()}})
    assert _secrets(kube_gateway, "POST", namespace, {"name": "db-password", "value": "hunter2"}).status_code == 202
    assert _secrets(kube_gateway, "POST", namespace, {"name": "db-password", "value": "x"}).status_code == 409

    stored = core.read_namespaced_secret("db-password", namespace)
    assert stored.metadata.labels["app.kubernetes.io/managed-by"] == "openfaas"
    assert base64.b64decode(stored.data["db-password"]) == b"hunter2"

    listed = _secrets(kube_gateway, "GET", namespace)
    assert listed.json() == [{"name": "db-password", "namespace": namespace}]  # not-ours is not listed
    assert "hunter2" not in listed.text

    assert _secrets(kube_gateway, "PUT", namespace, {"name": "db-password", "value": "correct horse"}).status_code \
        == 202
    assert base64.b64decode(core.read_namespaced_secret("db-password", namespace).data["db-password"]) \
        == b"correct horse"

    # A Secret the API did not create is neither replaced nor deleted through it.
    for method in ("PUT", "DELETE"):
        refused = _secrets(kube_gateway, method, namespace, {"name": "not-ours", "value": "overwritten"})
        assert refused.status_code == 404 and "not managed" in refused.json()["message"]
    assert base64.b64decode(core.read_namespaced_secret("not-ours", namespace).data["k"]) == b"kept"

    # A function deployed through the gateway reads it, as faas-netes mounts it (key = secret name).
    deployment = {"service": "withsecret", "image": "localhost/echo:test", "secrets": ["db-password"]}
    assert requests.post(kube_gateway.url + "/system/functions", json=deployment, params={"namespace": namespace},
                         auth=kube_gateway.basic_auth, timeout=30).status_code == 202
    echoed = requests.get(f"{kube_gateway.url}/function/withsecret.{namespace}", timeout=30).json()
    assert echoed["secrets"] == {"db-password": "correct horse"}

    assert _secrets(kube_gateway, "DELETE", namespace, {"name": "db-password"}).status_code == 202
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_secret("db-password", namespace)
    assert gone.value.status == 404
    assert _secrets(kube_gateway, "DELETE", namespace, {"name": "db-password"}).status_code == 404
    assert _secrets(kube_gateway, "GET", namespace).json() == []


def test_info_says_kubernetes_when_bound(kube_gateway):
    info = requests.get(kube_gateway.url + "/system/info", auth=kube_gateway.basic_auth, timeout=10).json()
    assert info["provider"]["orchestration"] == "kubernetes"
