"""ModelStores: our own (Deployment, Service, PVC, admin Secret made once) and the default store created on
demand."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client
from operator_cluster import DEFAULT_STORE, GROUP, OPERATOR_NAMESPACE, VERSION, condition

pytestmark = pytest.mark.integration


def store(objects, name):
    return objects._get(lambda: objects.custom.get_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE,
                                                                            "modelstores", name))


def test_own_store_is_deployed_and_ready_follows_the_deployment(objects, k8s):
    name = "own"
    objects.custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": name},
        "spec": {"storage": {"size": "2Gi"}}})
    apps = client.AppsV1Api(k8s)
    base = f"iris-server-{name}"
    try:
        deployment = objects.wait(lambda: objects._get(lambda: apps.read_namespaced_deployment(base,
                                                                                               OPERATOR_NAMESPACE)),
                                  what="the Deployment")
        uid = store(objects, name)["metadata"]["uid"]
        assert deployment.metadata.owner_references[0].uid == uid
        assert deployment.spec.template.spec.containers[0].image == "ghcr.io/mlfunctions/iris-server:0.1.0"
        service = objects.core.read_namespaced_service(base, OPERATOR_NAMESPACE)
        assert service.spec.type == "ClusterIP" and service.spec.ports[0].port == 8080
        claim = objects.core.read_namespaced_persistent_volume_claim(f"{base}-data", OPERATOR_NAMESPACE)
        assert claim.spec.resources.requests["storage"] == "2Gi"
        admin = objects.secret(OPERATOR_NAMESPACE, f"{base}-admin")
        token = base64.b64decode(admin.data["admin-token"]).decode()
        assert len(token) >= 32 and admin.metadata.owner_references[0].uid == uid

        ms = objects.wait(lambda: (m := store(objects, name)) and condition(m, "Ready").get("reason") ==
                          "DeploymentNotAvailable" and m, what="not available yet")
        assert ms["status"]["url"] == f"http://{base}.{OPERATOR_NAMESPACE}.svc:8080"
        assert ms["status"]["adminTokenSecret"] == f"{base}-admin"

        # no kubelet here: report the Deployment available as its controller would
        fresh = apps.read_namespaced_deployment(base, OPERATOR_NAMESPACE)
        apps.patch_namespaced_deployment_status(base, OPERATOR_NAMESPACE, {"status": {
            "observedGeneration": fresh.metadata.generation, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1}})
        objects.wait(lambda: condition(store(objects, name), "Ready").get("status") == "True", timeout=15,
                     what="Ready")

        # a spec change never regenerates the admin token
        objects.custom.patch_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", name,
                                                      {"spec": {"image": "example.com/iris-server:2"}},
                                                      _content_type="application/merge-patch+json")
        objects.wait(lambda: apps.read_namespaced_deployment(base, OPERATOR_NAMESPACE)
                     .spec.template.spec.containers[0].image == "example.com/iris-server:2", what="new image")
        again = objects.secret(OPERATOR_NAMESPACE, f"{base}-admin")
        assert again.metadata.uid == admin.metadata.uid and again.data == admin.data
    finally:
        objects.custom.delete_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", name)


def test_default_store_is_created_when_an_mlfunction_needs_it(objects, namespace):
    objects.create_mlf(namespace, "needs-default", {"task": "predict", "model": {"name": "iris"}})
    created = objects.wait(lambda: store(objects, DEFAULT_STORE), what="the default ModelStore")
    assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mlfunctions-operator"
    mlf = objects.wait(lambda: (m := objects.mlf(namespace, "needs-default")) and
                       condition(m, "Reconciling").get("status") == "True" and m, what="Reconciling")
    assert condition(mlf, "Stalled")["status"] == "False"
    assert DEFAULT_STORE in condition(mlf, "Reconciling")["message"]
    objects.wait(lambda: any(e.reason == "ModelStoreCreated" for e in objects.core.list_namespaced_event(
        namespace).items), what="the ModelStoreCreated Event")  # kopf posts Events from a queue of its own


def shared_store_spec(replicas: int) -> dict:
    return {"replicas": replicas,
            "artifacts": {"s3": {"endpoint": "http://seaweedfs.storage.svc:8333", "bucket": "models",
                                 "credentialsSecretRef": {"name": "s3-credentials"}}},
            "catalog": {"postgres": {"urlSecretRef": {"name": "catalog-db"}}}}


@pytest.mark.parametrize("spec, field", [
    ({"replicas": 3}, "spec.replicas"),
    ({"replicas": 2, "artifacts": {"s3": {"bucket": "models"}}}, "spec.replicas"),
    ({"external": {"url": "http://iris.example:8080", "adminTokenSecretRef": {"name": "admin"}},
      "catalog": {"postgres": {"urlSecretRef": {"name": "db"}}}}, "spec.external"),
])
def test_more_than_one_replica_needs_both_shared_backends_at_admission(objects, spec, field):
    with pytest.raises(client.ApiException) as refused:
        objects.custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": "refused"},
            "spec": spec})
    assert refused.value.status == 422
    assert field in refused.value.body


def test_a_store_on_shared_backends_runs_replicas_side_by_side_without_a_volume(objects, k8s):
    name = "shared"
    objects.custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": name},
        "spec": shared_store_spec(3)})
    apps, policy = client.AppsV1Api(k8s), client.PolicyV1Api(k8s)
    base = f"iris-server-{name}"
    try:
        deployment = objects.wait(lambda: objects._get(lambda: apps.read_namespaced_deployment(
            base, OPERATOR_NAMESPACE)), what="the Deployment")
        assert deployment.spec.replicas == 3 and deployment.spec.strategy.type == "RollingUpdate"
        pod = deployment.spec.template.spec
        assert {v.name: bool(v.empty_dir) for v in pod.volumes}["data"] is True
        env = {e.name: e.value for e in pod.containers[0].env}
        assert env["IRIS_DATABASE_URL_FILE"] == "/var/run/secrets/iris-catalog/url"
        budget = policy.read_namespaced_pod_disruption_budget(base, OPERATOR_NAMESPACE)
        assert budget.spec.max_unavailable == 1
        assert budget.metadata.owner_references[0].uid == store(objects, name)["metadata"]["uid"]
        assert objects._get(lambda: objects.core.read_namespaced_persistent_volume_claim(
            f"{base}-data", OPERATOR_NAMESPACE)) is None

        fresh = apps.read_namespaced_deployment(base, OPERATOR_NAMESPACE)
        apps.patch_namespaced_deployment_status(base, OPERATOR_NAMESPACE, {"status": {
            "observedGeneration": fresh.metadata.generation, "replicas": 3, "updatedReplicas": 3,
            "readyReplicas": 2, "availableReplicas": 2}})
        objects.wait(lambda: "2/3" in condition(store(objects, name), "Ready").get("message", ""),
                     what="Ready to say 2 of 3 replicas are available")
    finally:
        objects.custom.delete_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", name)
