"""The reconciler against the real API server, as its own ServiceAccount under rbac.yaml: Functions become
Deployments and Services in faas-netes's shape, follow updates, report their Deployment's status, and take their
objects with them when deleted (garbage collector). The test control plane runs no Deployment controller, so the
tests write Deployment status the way it would."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas.faas_netes import identity

GC_SECONDS = 60  # the garbage collector rediscovers resources every 30 s: a fresh CRD's children can take that long


def wait_for(check, timeout: float = 15.0, what: str = "condition"):
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


class Cluster:
    """Admin-side reads and writes for the tests (the reconciler itself never runs as admin)."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.namespace = namespace
        self.custom, self.apps, self.core = client.CustomObjectsApi(api), client.AppsV1Api(api), client.CoreV1Api(api)

    def create_function(self, name: str, **spec) -> dict:
        return self.custom.create_namespaced_custom_object("openfaas.com", "v1", self.namespace, "functions", {
            "apiVersion": "openfaas.com/v1", "kind": "Function", "metadata": {"name": name},
            "spec": {"name": name, "image": f"mlfunctions/{name}:0.1.0", **spec}})

    def patch_function(self, name: str, spec: dict) -> None:
        self.custom.patch_namespaced_custom_object("openfaas.com", "v1", self.namespace, "functions", name,
                                                   {"spec": spec}, _content_type="application/merge-patch+json")

    def function(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object("openfaas.com", "v1", self.namespace, "functions", name)

    def delete_function(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object("openfaas.com", "v1", self.namespace, "functions", name)

    def deployment(self, name: str) -> client.V1Deployment | None:
        return self._get(lambda: self.apps.read_namespaced_deployment(name, self.namespace))

    def service(self, name: str) -> client.V1Service | None:
        return self._get(lambda: self.core.read_namespaced_service(name, self.namespace))

    def report_deployment(self, name: str, available: int) -> None:
        """Write the Deployment's status as its controller would once `available` pods are ready."""
        live = self.apps.read_namespaced_deployment(name, self.namespace)
        replicas = live.spec.replicas
        self.apps.patch_namespaced_deployment_status(name, self.namespace, {"status": {
            "observedGeneration": live.metadata.generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": available, "availableReplicas": available,
            "unavailableReplicas": replicas - available}})

    def conditions(self, name: str) -> dict[str, str]:
        status = self.function(name).get("status") or {}
        return {c["type"]: c["status"] for c in status.get("conditions", [])}

    @staticmethod
    def _get(read):
        try:
            return read()
        except ApiException as error:
            if error.status == 404:
                return None
            raise


@pytest.fixture
def cluster(k8s, namespace) -> Cluster:
    return Cluster(k8s, namespace)


def env(deployment: client.V1Deployment) -> dict[str, str]:
    return {e.name: e.value for e in deployment.spec.template.spec.containers[0].env or []}


def test_a_function_becomes_a_deployment_and_a_service_in_faas_netes_shape(faas_netes, cluster):
    cluster.core.create_namespaced_secret(cluster.namespace, {"metadata": {"name": "iris-read"},
                                                              "stringData": {"token": "t0k3n", "url": "http://x"}})
    created = cluster.create_function(
        "predict", handler="python index.py", environment={"MODEL": "iris"}, secrets=["iris-read"],
        labels={"com.openfaas.scale.min": "2", "com.openfaas.scale.zero": "true"},
        annotations={"com.openfaas.serviceaccount": "predict-sa"}, readOnlyRootFilesystem=True,
        limits={"memory": "256Mi"}, requests={"cpu": "50m"})

    deployment = wait_for(lambda: cluster.deployment("predict"), what="the predict Deployment")
    owner = deployment.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Function", "predict",
                                                                    created["metadata"]["uid"], True)
    assert deployment.spec.replicas == 2
    assert deployment.spec.selector.match_labels == {"faas_function": "predict"}
    pod = deployment.spec.template
    assert pod.metadata.labels == {"faas_function": "predict", "com.openfaas.scale.min": "2",
                                   "com.openfaas.scale.zero": "true"}
    assert pod.spec.service_account_name == "predict-sa"
    container = pod.spec.containers[0]
    assert (container.name, container.image, container.image_pull_policy) == (
        "predict", "mlfunctions/predict:0.1.0", "IfNotPresent")
    assert [(p.name, p.container_port, p.protocol) for p in container.ports] == [("http", 8080, "TCP")]
    assert env(deployment) == {"MODEL": "iris", "fprocess": "python index.py"}
    assert container.readiness_probe.http_get.path == container.liveness_probe.http_get.path == "/_/health"
    assert container.security_context.read_only_root_filesystem is True
    assert (container.resources.limits, container.resources.requests) == ({"memory": "256Mi"}, {"cpu": "50m"})
    mounts = {m.name: (m.mount_path, bool(m.read_only)) for m in container.volume_mounts}
    assert mounts == {"temp": ("/tmp", False), "predict-projected-secrets": ("/var/openfaas/secrets", True)}
    projected = next(v for v in pod.spec.volumes if v.name == "predict-projected-secrets").projected
    assert [(s.secret.name, [(i.key, i.path) for i in s.secret.items]) for s in projected.sources] == [
        ("iris-read", [("token", "token"), ("url", "url")])]

    service = wait_for(lambda: cluster.service("predict"), what="the predict Service")
    assert service.spec.type == "ClusterIP" and service.spec.selector == {"faas_function": "predict"}
    assert [(p.name, p.port, p.target_port, p.protocol) for p in service.spec.ports] == [("http", 8080, 8080, "TCP")]
    assert service.metadata.owner_references[0].uid == created["metadata"]["uid"]


def test_a_scale_between_a_reconciles_read_and_its_write_is_kept(faas_netes, cluster):
    """The race an autoscaler runs: the reconciler reads the Deployment (1 replica), the autoscaler scales it to 3,
    then the reconciler writes. The write must conflict and be retried, not put 1 back."""
    cluster.create_function("predict")
    wait_for(lambda: cluster.deployment("predict"), what="the predict Deployment")
    kube = faas_netes.reconciler._kube
    read = kube.deployment
    scaled = []

    async def read_then_autoscale(name):
        current = await read(name)
        if not scaled:
            scaled.append(name)
            cluster.apps.patch_namespaced_deployment_scale(name, cluster.namespace, {"spec": {"replicas": 3}})
        return current

    kube.deployment = read_then_autoscale
    try:
        cluster.patch_function("predict", {"environment": {"MODEL": "wine"}})
        updated = wait_for(lambda: (d := cluster.deployment("predict")) and env(d).get("MODEL") == "wine" and d,
                           what="the new environment in the Deployment")
    finally:
        kube.deployment = read
    assert scaled == ["predict"]
    assert updated.spec.replicas == 3


def test_an_updated_function_updates_its_deployment_and_keeps_the_autoscalers_replicas(faas_netes, cluster):
    cluster.create_function("predict", environment={"MODEL": "iris"})
    wait_for(lambda: cluster.deployment("predict"), what="the predict Deployment")
    faas_netes.scale("predict", 3)
    wait_for(lambda: cluster.deployment("predict").spec.replicas == 3, what="the scale to 3 replicas")

    cluster.patch_function("predict", {"image": "mlfunctions/predict:0.2.0", "environment": {"MODEL": "wine"},
                                       "handler": "python serve.py"})
    updated = wait_for(lambda: (d := cluster.deployment("predict")) and
                       d.spec.template.spec.containers[0].image == "mlfunctions/predict:0.2.0" and d,
                       what="the new image in the Deployment")
    assert env(updated) == {"MODEL": "wine", "fprocess": "python serve.py"}
    assert updated.spec.replicas == 3  # faas-netes' getReplicas: a reconcile leaves the autoscaler's count alone

    cluster.patch_function("predict", {"labels": {"com.openfaas.scale.min": "5"}})
    wait_for(lambda: cluster.deployment("predict").spec.replicas == 5, what="replicas raised to the new minimum")
    with pytest.raises(LookupError):
        faas_netes.scale("no-such-function", 1)


def test_the_functions_status_follows_its_deployments(faas_netes, cluster):
    cluster.create_function("predict")
    wait_for(lambda: cluster.conditions("predict").get("Reconciling") == "True", what="a Reconciling status")
    status = cluster.function("predict")["status"]
    assert (status["replicas"], status["availableReplicas"], cluster.conditions("predict")["Ready"]) == (1, 0, "False")
    assert status["observedGeneration"] == cluster.function("predict")["metadata"]["generation"]

    cluster.report_deployment("predict", available=1)
    wait_for(lambda: cluster.conditions("predict") == {"Ready": "True", "Healthy": "True", "Reconciling": "False",
                                                       "Stalled": "False"}, what="Ready and Healthy")
    assert cluster.function("predict")["status"]["availableReplicas"] == 1

    faas_netes.scale("predict", 0)
    wait_for(lambda: cluster.deployment("predict").spec.replicas == 0, what="the scale to zero")
    cluster.report_deployment("predict", available=0)
    wait_for(lambda: cluster.conditions("predict") == {"Ready": "True", "Healthy": "False", "Reconciling": "False",
                                                       "Stalled": "False"}, what="scaled to zero: Ready, not Healthy")
    assert cluster.function("predict")["status"]["replicas"] == 0
    cluster.patch_function("predict", {"environment": {"A": "1"}})  # a reconcile keeps it at zero
    wait_for(lambda: env(cluster.deployment("predict")) == {"A": "1"}, what="the new environment")
    assert cluster.deployment("predict").spec.replicas == 0


def test_a_scale_to_zero_holds_across_reconciles_of_the_same_generation(faas_netes, cluster):
    """The bench's cold start (bench/node_bench): scale(name, 0) must not be undone by the passes that follow it,
    the one the Deployment's status update queues and one for a metadata-only change of the Function. The one
    worker takes Functions in the order their events came, so a Function created after the change having its
    Deployment says that pass is done."""
    cluster.create_function("predict", labels={"com.openfaas.scale.min": "1"})
    wait_for(lambda: cluster.deployment("predict"), what="the predict Deployment")
    cluster.report_deployment("predict", available=1)
    wait_for(lambda: cluster.conditions("predict").get("Healthy") == "True", what="Healthy")
    generation = cluster.function("predict")["metadata"]["generation"]

    faas_netes.scale("predict", 0)
    wait_for(lambda: cluster.deployment("predict").spec.replicas == 0, what="the scale to zero")
    cluster.report_deployment("predict", available=0)  # its pass applies the Deployment, then writes this
    wait_for(lambda: cluster.function("predict")["status"]["availableReplicas"] == 0, what="the status pass")
    assert cluster.deployment("predict").spec.replicas == 0
    cluster.custom.patch_namespaced_custom_object("openfaas.com", "v1", cluster.namespace, "functions", "predict",
                                                  {"metadata": {"annotations": {"touched": "1"}}},
                                                  _content_type="application/merge-patch+json")
    cluster.create_function("barrier")
    wait_for(lambda: cluster.deployment("barrier"), what="the barrier Function's Deployment")
    assert cluster.function("predict")["metadata"]["generation"] == generation
    assert cluster.deployment("predict").spec.replicas == 0


def test_a_missing_secret_stalls_the_function_until_it_exists(faas_netes, cluster):
    cluster.create_function("train", secrets=["train-token"])
    wait_for(lambda: cluster.conditions("train").get("Stalled") == "True", what="a Stalled status")
    stalled = next(c for c in cluster.function("train")["status"]["conditions"] if c["type"] == "Stalled")
    assert "required secret 'train-token' was not found" in stalled["message"]
    assert cluster.deployment("train") is None

    cluster.core.create_namespaced_secret(cluster.namespace, {"metadata": {"name": "train-token"},
                                                              "stringData": {"token": "t"}})
    wait_for(lambda: cluster.deployment("train"), timeout=45, what="the Deployment once the Secret exists")
    wait_for(lambda: cluster.conditions("train").get("Stalled") == "False", what="Stalled cleared")


def test_a_deployment_someone_else_owns_is_left_alone(faas_netes, cluster):
    cluster.apps.create_namespaced_deployment(cluster.namespace, {
        "metadata": {"name": "taken"}, "spec": {
            "selector": {"matchLabels": {"app": "taken"}},
            "template": {"metadata": {"labels": {"app": "taken"}},
                         "spec": {"containers": [{"name": "c", "image": "other:1"}]}}}})
    cluster.create_function("taken")
    wait_for(lambda: cluster.conditions("taken").get("Stalled") == "True", what="a Stalled status")
    assert cluster.deployment("taken").spec.template.spec.containers[0].image == "other:1"
    assert cluster.service("taken") is None


def test_deleting_the_function_garbage_collects_its_objects(faas_netes, cluster):
    cluster.create_function("predict")
    wait_for(lambda: cluster.deployment("predict") and cluster.service("predict"), what="both objects")
    cluster.delete_function("predict")
    wait_for(lambda: cluster.deployment("predict") is None and cluster.service("predict") is None,
             timeout=GC_SECONDS, what="the garbage collector to delete the Deployment and the Service")


def test_the_reconciler_can_do_no_more_than_its_role(control_plane, k8s, function_crd, namespace):
    """Its ServiceAccount may not delete, list Secrets, or touch another namespace."""
    account = identity.install(k8s, namespace)
    user = f"system:serviceaccount:{namespace}:{account}"
    authz = client.AuthorizationV1Api(k8s)

    def allowed(verb: str, resource: str, ns: str = namespace, group: str = "", subresource: str = "") -> bool:
        review = authz.create_subject_access_review({"spec": {"user": user, "resourceAttributes": {
            "verb": verb, "resource": resource, "namespace": ns, "group": group, "subresource": subresource}}})
        return review.status.allowed

    assert allowed("patch", "deployments", group="apps") and allowed("watch", "functions", group="openfaas.com")
    assert allowed("patch", "functions", group="openfaas.com", subresource="status")
    assert allowed("get", "secrets")
    assert not allowed("list", "secrets")
    assert not allowed("delete", "deployments", group="apps")
    assert not allowed("update", "functions", group="openfaas.com")
    assert not allowed("get", "deployments", ns="kube-system", group="apps")
