"""A ModelStore with its artifacts in S3 (SeaweedFS) and its catalog in PostgreSQL, three replicas on the real node:
the chart's values make it, the operator deploys it as its own ServiceAccount, the pods run the image built from
iris-server's Dockerfile. SeaweedFS and PostgreSQL run on this machine, on the node's address (pods reach it as they
reach the API server). Concurrent uploads across replicas give distinct versions; a replica killed mid-upload loses
nothing that was acknowledged and leaves nothing half-visible.

The tests run in file order on one release."""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
from pathlib import Path

import pytest
import requests
from chart_release import FUNCTION_CRD, Release, user_values
from cluster_traffic import HTTP_TIMEOUT, ServiceURL, StoreAdmin
from function_pods import secret_value
from kubernetes import client
from mlfunctions_harness import crds, postgres, processes, seaweedfs
from mlfunctions_harness.model_store import onnx_model
from mlfunctions_harness.node_network import NODE_IP, POD_CIDR

pytestmark = pytest.mark.timeout(600)

REPLICAS = 3
BUCKET = "models"
STORE_SELECTOR = "app.kubernetes.io/name=iris-server,app.kubernetes.io/instance=default"
CONCURRENT_UPLOADS = 20


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """SeaweedFS and PostgreSQL on the node's address, where pods reach this machine."""
    objects = seaweedfs.start(tmp_path_factory.mktemp("seaweedfs"), host=NODE_IP)
    database = postgres.PostgresServer(host=NODE_IP, client_networks=[POD_CIDR]).start()
    try:
        objects.create_bucket(BUCKET)
        yield objects, database, database.create_database("catalog")
    finally:
        database.stop()
        database.remove()
        objects.stop()


@pytest.fixture(scope="module")
def release(node, node_api, built, backends, tmp_path_factory):
    objects, _, catalog_url = backends
    installed = Release(node.control_plane.kubeconfig, tmp_path_factory.mktemp("replicated"))
    core = client.CoreV1Api(node_api)
    crds.install(node_api, [FUNCTION_CRD])  # the one piece of OpenFaaS the chart needs
    for namespace in (installed.namespace, installed.function_namespace):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_secret(installed.namespace, {"metadata": {"name": "models-s3"}, "stringData": {
        "AWS_ACCESS_KEY_ID": objects.access_key, "AWS_SECRET_ACCESS_KEY": objects.secret_key}})
    core.create_namespaced_secret(installed.namespace, {"metadata": {"name": "models-db"},
                                                        "stringData": {"url": catalog_url}})
    installed.install(user_values(built, console={"enabled": False}, modelStores={"default": {
        "replicas": REPLICAS,
        "artifacts": {"s3": {"bucket": BUCKET, "endpoint": objects.endpoint, "credentialsSecretName": "models-s3"}},
        "catalog": {"postgres": {"urlSecretName": "models-db"}}}}))
    try:
        yield installed
    finally:
        installed.uninstall()


def store_pods(core: client.CoreV1Api, namespace: str) -> list[client.V1Pod]:
    return [p for p in core.list_namespaced_pod(namespace, label_selector=STORE_SELECTOR).items
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and all(c.ready for c in p.status.container_statuses or ())]


@pytest.fixture(scope="module")
def store(release, core, kubectl) -> StoreAdmin:
    kubectl.wait("modelstore/default", "condition=Ready", release.namespace, timeout=300)
    status = kubectl.json("get", "modelstore", "default", "-n", release.namespace)["status"]
    token = secret_value(core, release.namespace, status["adminTokenSecret"], "admin-token")
    pods = {p.status.pod_ip for p in store_pods(core, release.namespace)}
    service = core.read_namespaced_service("iris-server-default", release.namespace)
    return StoreAdmin(ServiceURL(service.spec.cluster_ip, 8080, pods=pods), token)


def upload(base: str, token: str, model: str, data: bytes) -> requests.Response:
    return requests.post(f"{base}/v1/models/{model}/versions", params={"format": "onnx"}, data=data,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
                                  "X-Content-SHA256": hashlib.sha256(data).hexdigest()}, timeout=HTTP_TIMEOUT)


def test_three_replicas_run_side_by_side_without_a_volume(release, store, core, kubectl):
    pods = store_pods(core, release.namespace)
    assert len(pods) == REPLICAS and len({p.status.pod_ip for p in pods}) == REPLICAS
    for pod in pods:
        assert not [v for v in pod.spec.volumes if v.persistent_volume_claim]
        env = {e.name: e.value for e in pod.spec.containers[0].env}
        assert env["IRIS_ARTIFACT_BACKEND"] == "s3" and env["IRIS_DATABASE_URL_FILE"]
    assert not core.list_namespaced_persistent_volume_claim(release.namespace).items
    budget = client.PolicyV1Api(core.api_client).read_namespaced_pod_disruption_budget("iris-server-default",
                                                                                       release.namespace)
    assert budget.spec.max_unavailable == 1
    assert kubectl.json("get", "deployment", "iris-server-default", "-n", release.namespace)["spec"][
        "strategy"]["type"] == "RollingUpdate"


def test_concurrent_uploads_across_replicas_get_distinct_versions_with_matching_digests(release, store, core):
    token = store.headers["Authorization"].split()[1]
    pods = sorted(p.status.pod_ip for p in store_pods(core, release.namespace))
    bodies = [onnx_model(seed=100 + i) for i in range(CONCURRENT_UPLOADS)]
    # Spread over the replicas by address, so every replica allocates versions at the same time as the others.
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_UPLOADS) as pool:
        answers = list(pool.map(lambda i: upload(f"http://{pods[i % len(pods)]}:8080", token, "shared",
                                                 bodies[i]), range(CONCURRENT_UPLOADS)))
    assert [a.status_code for a in answers] == [201] * CONCURRENT_UPLOADS, [a.text for a in answers]
    created = {a.json()["version"]: a.json()["sha256"] for a in answers}
    assert sorted(created) == list(range(1, CONCURRENT_UPLOADS + 1))
    assert sorted(created.values()) == sorted(hashlib.sha256(b).hexdigest() for b in bodies)
    listed = store.versions("shared")
    assert listed == created
    for version in (1, CONCURRENT_UPLOADS):  # the bytes, as any replica serves them
        assert store.artifact_sha256("shared", version) == created[version]


def test_a_replica_killed_mid_upload_loses_nothing(node, release, store, core, kubectl):
    token = store.headers["Authorization"].split()[1]
    before = store.versions("shared")
    victim, *others = store_pods(core, release.namespace)
    victim_process = Path(f"/proc/{node.container_pid(victim.status.container_statuses[0].container_id)}")
    large = onnx_model(seed=7, floats=12 * 1024 * 1024)  # ~48 MB: long enough on the wire to be cut off
    killed = threading.Event()

    def cut_off_upload() -> requests.Response | Exception:
        def chunks():
            step = 1 << 20
            for offset in range(0, len(large), step):
                if offset == 8 * step:  # a few MB sent: kill the pod receiving it, and send no more until it is dead
                    core.delete_namespaced_pod(victim.metadata.name, release.namespace, grace_period_seconds=0)
                    processes.wait_for(lambda: not victim_process.exists(), 60, "the killed store process to exit",
                                       interval=0.05)
                    killed.set()
                yield large[offset:offset + step]
        try:
            return requests.post(f"http://{victim.status.pod_ip}:8080/v1/models/shared/versions",
                                 params={"format": "onnx"}, data=chunks(), timeout=HTTP_TIMEOUT, headers={
                                     "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
                                     "X-Content-SHA256": hashlib.sha256(large).hexdigest()})
        except requests.RequestException as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        cut = pool.submit(cut_off_upload)
        survivors = [pool.submit(upload, f"http://{pod.status.pod_ip}:8080", token, "shared",
                                 onnx_model(seed=200 + i)) for i, pod in enumerate(others)]
        outcome = cut.result()
        answers = [f.result() for f in survivors]
    assert killed.is_set()
    assert isinstance(outcome, Exception) or outcome.status_code >= 500, outcome
    assert [a.status_code for a in answers] == [201] * len(others), [a.text for a in answers]

    # Nothing acknowledged is lost, nothing half-written is visible; the bytes are whole from any replica.
    after = store.versions("shared")
    assert {v: d for v, d in after.items() if v in before} == before
    assert set(after) - set(before) == {a.json()["version"] for a in answers}
    assert hashlib.sha256(large).hexdigest() not in after.values()
    for answer in answers:
        assert store.artifact_sha256("shared", answer.json()["version"]) == answer.json()["sha256"]

    # The Deployment replaces the pod; the store is Ready again with three replicas, and takes uploads.
    processes.wait_for(lambda: len(store_pods(core, release.namespace)) == REPLICAS
                       and victim.metadata.name not in {p.metadata.name for p in store_pods(core, release.namespace)},
                       180, "a replacement store pod")
    kubectl.wait("modelstore/default", "condition=Ready", release.namespace, timeout=180)
    store.url.routed_to({p.status.pod_ip for p in store_pods(core, release.namespace)})
    retried = upload(store.url.base, token, "shared", large)
    assert retried.status_code == 201, retried.text
    assert store.artifact_sha256("shared", retried.json()["version"]) == hashlib.sha256(large).hexdigest()
