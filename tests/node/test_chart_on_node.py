"""What a user does with the chart, on a real node: `helm install` with the images built from the Dockerfiles, the
default ModelStore serving from a bound volume, a train and a predict MLFunction running as pods (faas-netes's
shape, made by the faas_netes reconciler in OpenFaaS's place), the operator and the store pod deleted at the worst
moment, `helm upgrade`, `helm uninstall`.

The tests run in file order on one release: each picks up where the one before left the cluster, as a user's
session does. Every wait is on a condition or an event, with a deadline."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from pathlib import Path

import chart_release
import pytest
from chart_release import Kubectl, Release, predict_function, train_function, user_values
from cluster_traffic import ServiceURL, StoreAdmin
from function_pods import (
    TOKEN_KEY,
    function_pod,
    function_service,
    invoke_headers,
    running_pod,
    secret_value,
    wait_all_ready,
)
from kubernetes import client
from local_openfaas.faas_netes import background
from local_openfaas.faas_netes.objects import DeploymentConfig
from mlfunctions_harness import processes
from mlfunctions_operator.naming import function_name
from node_pods import restricted_pod

# The first test also imports the images into the node's containerd (a minute or two on a fresh node).
pytestmark = pytest.mark.timeout(600)

USERS = "data-science"
STORE_SELECTOR = "app.kubernetes.io/name=iris-server,app.kubernetes.io/instance=default"
OPERATOR_SELECTOR = "app.kubernetes.io/component=operator"
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [5.7, 2.8, 4.1, 1.3], [6.3, 3.3, 6.0, 2.5]]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]  # what any decent iris classifier says for those rows
# Values a user would set: a predict function notices a new version within seconds (the default is 30).
USER_OVERRIDES = {"functions": {"modelRefreshSeconds": 2}}


@pytest.fixture(scope="module")
def release(node, node_api, core, built, tmp_path_factory):
    """The chart installed as a user installs it, with OpenFaaS's part (Function CRD, function namespace, Function
    -> Deployment/Service) played by the CRD and the faas_netes reconciler as its own ServiceAccount."""
    workdir = tmp_path_factory.mktemp("release")
    installed = Release(node.control_plane.kubeconfig, workdir)
    faas_kubeconfig = chart_release.openfaas_identity(node.control_plane, node_api, installed, USERS, workdir)
    faas_netes = background.start(faas_kubeconfig, installed.function_namespace,
                                  DeploymentConfig(image_pull_policy="Never"))
    try:
        installed.install(user_values(built, **USER_OVERRIDES))
        yield installed
    finally:
        faas_netes.stop()


@pytest.fixture(scope="module")
def store(release, core, kubectl) -> StoreAdmin:
    kubectl.wait("modelstore/default", "condition=Ready", release.namespace)
    admin_secret = kubectl.json("get", "modelstore", "default", "-n", release.namespace)["status"]["adminTokenSecret"]
    token = secret_value(core, release.namespace, admin_secret, "admin-token")
    pod = running_pod(core, release.namespace, STORE_SELECTOR)
    service = core.read_namespaced_service("iris-server-default", release.namespace)
    return StoreAdmin(ServiceURL(service.spec.cluster_ip, 8080, pods={pod.status.pod_ip}), token)


@pytest.fixture(scope="module")
def trained(release, store, kubectl, core) -> dict:
    """The train MLFunction Ready, invoked once: its answer."""
    kubectl.apply(train_function("iris-train", USERS, "iris", params={"max_iter": 200}))
    kubectl.wait("mlfunction/iris-train", "condition=Ready", USERS)
    answer = function_service(core, release.function_namespace, function_name(USERS, "iris-train")).post(
        "/", headers=invoke_headers(core, USERS, "iris-train"))
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def predictor(release, trained, kubectl, core) -> ServiceURL:
    kubectl.apply(predict_function("iris-predict", USERS, "iris"))
    kubectl.wait("mlfunction/iris-predict", "condition=Ready", USERS)
    return function_service(core, release.function_namespace, function_name(USERS, "iris-predict"))


def test_helm_install_runs_the_operator_as_users_run_it(node, release, kubectl, core):
    kubectl.rollout(release.operator, release.namespace)
    pod = running_pod(core, release.namespace, OPERATOR_SELECTOR)
    container = pod.spec.containers[0]
    assert container.image == "docker.io/mlfunctions/operator:dev"
    assert pod.spec.service_account_name == release.operator
    assert container.security_context.read_only_root_filesystem is True
    assert container.readiness_probe.http_get.path == "/healthz"  # so Ready means kopf serves, not only started
    # The process itself, seen from this machine: uid 65532, which has no passwd entry in the image (kopf once
    # crashed on exactly that: `getpwuid(): uid not found: 65532`).
    pid = node.container_pid(pod.status.container_statuses[0].container_id)
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split() == ["65532"] * 4
    logs = core.read_namespaced_pod_log(pod.metadata.name, release.namespace)
    assert "getpwuid" not in logs and "Traceback" not in logs, logs[-3000:]
    # It watches through the API server as its ServiceAccount: the ModelStore the chart made is being reconciled.
    kubectl.wait("modelstore/default", "jsonpath={.status.observedGeneration}=1", release.namespace)
    assert core.read_namespaced_pod(pod.metadata.name, release.namespace).status.container_statuses[0].restart_count == 0


def test_default_modelstore_serves_from_a_bound_volume_by_its_service_name(node, release, store, core, kubectl,
                                                                          built):
    claim = core.read_namespaced_persistent_volume_claim("iris-server-default-data", release.namespace)
    assert claim.status.phase == "Bound" and claim.spec.storage_class_name == "local-path"
    pod = running_pod(core, release.namespace, STORE_SELECTOR)
    assert pod.spec.containers[0].image == built["iris-server"].ref
    assert {v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim} == {
        claim.metadata.name}
    catalog = _volume_dir(node, claim) / "catalog.sqlite3"  # the server's data, on the provisioned volume
    assert catalog.stat().st_uid == 65532
    status = kubectl.json("get", "modelstore", "default", "-n", release.namespace)["status"]
    assert status["url"] == release.store_url
    # By its Service name from a pod, as the functions reach it (CoreDNS, then kube-proxy).
    probe = restricted_pod("store-probe", built["iris-server"].ref, ["python", "-c", (
        f"import urllib.request; print(urllib.request.urlopen('{release.store_url}/readyz', timeout=10).status)")])
    core.create_namespaced_pod(USERS, probe)
    kubectl.wait("pod/store-probe", "jsonpath={.status.phase}=Succeeded", USERS, timeout=120)
    assert core.read_namespaced_pod_log("store-probe", USERS).strip() == "200"
    # The admin Secret the operator generated is the store's admin credential; the operator used it in-cluster.
    assert store.tokens().status_code == 200
    operator_pod = running_pod(core, release.namespace, OPERATOR_SELECTOR)
    operator_logs = core.read_namespaced_pod_log(operator_pod.metadata.name, release.namespace)
    assert f'GET {release.store_url}/v1/tokens \\"HTTP/1.1 200 OK\\"' in operator_logs


def test_train_function_runs_from_its_image_and_uploads_version_1(node, release, store, trained, kubectl, core,
                                                                 built):
    assert trained["model"] == {"name": "iris", "version": 1}
    assert trained["metrics"]["accuracy"] > 0.9 and trained["metrics"]["onnxAgreement"] == 1.0
    versions = store.versions("iris")
    assert list(versions) == [1]
    assert store.artifact_sha256("iris", 1) == versions[1]
    claim = core.read_namespaced_persistent_volume_claim("iris-server-default-data", release.namespace)
    [artifact] = (_volume_dir(node, claim) / "artifacts" / "iris").iterdir()  # on the volume, whole
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == versions[1]
    function = function_name(USERS, "iris-train")
    pod = function_pod(core, release.function_namespace, function)
    assert pod.spec.containers[0].image == built["train"].ref
    _assert_credential_mounted(pod, kubectl, core, release.function_namespace, function)


def test_predict_function_loads_the_model_through_the_store_service_and_answers_both_protocols(
        release, predictor, kubectl, core, built):
    v1 = predictor.post("/", {"instances": IRIS_ROWS})
    assert v1.status_code == 200, v1.text
    assert v1.json() == {"predictions": IRIS_CLASSES, "model": {"name": "iris", "version": 1}}
    v2 = predictor.post("/v2/models/iris/infer", {"inputs": [
        {"name": "input", "shape": [3, 4], "datatype": "FP32", "data": [x for row in IRIS_ROWS for x in row]}]})
    assert v2.status_code == 200, v2.text
    assert v2.json()["model_version"] == "1"
    assert v2.json()["outputs"][0]["data"] == IRIS_CLASSES
    function = function_name(USERS, "iris-predict")
    pod = function_pod(core, release.function_namespace, function)
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["MODEL_STORE_URL"] == release.store_url and pod.spec.containers[0].image == built["predict"].ref
    _assert_credential_mounted(pod, kubectl, core, release.function_namespace, function)


def test_operator_pod_deleted_mid_reconcile_comes_back_and_finishes(release, predictor, kubectl, core):
    before = running_pod(core, release.namespace, OPERATOR_SELECTOR)
    kubectl.apply(predict_function("iris-predict-b", USERS, "iris"))
    # Mid-reconcile: kopf has taken the object (its finalizer is on) and it is not Ready yet.
    processes.wait_for(lambda: _taken_not_ready(kubectl, "iris-predict-b"), 60,
                       "the operator to start on iris-predict-b", interval=0.05)
    core.delete_namespaced_pod(before.metadata.name, release.namespace, grace_period_seconds=0)

    after = running_pod(core, release.namespace, OPERATOR_SELECTOR)
    assert after.metadata.uid != before.metadata.uid
    items = {i["metadata"]["name"]: i for i in wait_all_ready(kubectl, USERS)}
    assert set(items) == {"iris-train", "iris-predict", "iris-predict-b"}
    function = function_name(USERS, "iris-predict-b")
    secrets = core.list_namespaced_secret(release.function_namespace,
                                          label_selector="mlfunctions.dev/owner-name=iris-predict-b").items
    assert [s.metadata.name for s in secrets] == [f"{function}-model-store"]  # one credential, not two
    answer = function_service(core, release.function_namespace, function).post("/", {"instances": IRIS_ROWS[:1]})
    assert answer.status_code == 200 and answer.json()["predictions"] == ["setosa"], answer.text


def test_store_pod_deleted_mid_upload_comes_back_with_every_version(node, release, store, trained, predictor,
                                                                    kubectl, core):
    kubectl.apply(train_function("forest-train", USERS, "forest", dataset="digits",
                                 estimator="RandomForestClassifier", params={"n_estimators": 300}))
    kubectl.wait("mlfunction/forest-train", "condition=Ready", USERS)
    trainer = function_service(core, release.function_namespace, function_name(USERS, "forest-train"))
    before = {"iris": store.versions("iris"), "forest": store.versions("forest")}
    store_pod = running_pod(core, release.namespace, STORE_SELECTOR)
    claim = core.read_namespaced_persistent_volume_claim("iris-server-default-data", release.namespace)
    staging = _volume_dir(node, claim) / "staging"

    answers: list = []
    headers = invoke_headers(core, USERS, "forest-train")
    training = threading.Thread(target=lambda: answers.append(trainer.post("/", headers=headers)))
    training.start()
    # Mid-upload: the store is streaming the model (some 10 MB) into its staging directory. The pod is deleted
    # with no grace, and its process killed at once, as a node failure would (the kubelet alone would let the
    # upload drain first).
    processes.wait_for(lambda: any(staging.iterdir()) or not training.is_alive(), 120,
                       "the upload to reach the store's staging directory", interval=0.001)
    assert training.is_alive(), f"the training finished before its upload was seen: {answers}"
    os.kill(node.container_pid(store_pod.status.container_statuses[0].container_id), signal.SIGKILL)
    core.delete_namespaced_pod(store_pod.metadata.name, release.namespace, grace_period_seconds=0)
    training.join(180)

    replacement = running_pod(core, release.namespace, STORE_SELECTOR)
    assert replacement.metadata.uid != store_pod.metadata.uid
    recovery = core.read_namespaced_pod_log(replacement.metadata.name, release.namespace)
    assert '"staged_removed": 1' in recovery, recovery  # the kill did land mid-upload: a half-written file
    store.url.routed_to({replacement.status.pod_ip})
    if answers[0].status_code != 200:  # the upload's retries ran out while the store was away: train again
        assert answers[0].status_code in (502, 503), answers[0].text
        answers.append(trainer.post("/", headers=headers))
    assert answers[-1].status_code == 200, answers[-1].text
    after = {"iris": store.versions("iris"), "forest": store.versions("forest")}
    assert after["iris"] == before["iris"] and before["forest"] == {}
    assert list(after["forest"]) == [1]  # the killed upload left no version; the one that succeeded is there
    for model, versions in after.items():
        for version, digest in versions.items():
            assert store.artifact_sha256(model, version) == digest, (model, version)
    wait_all_ready(kubectl, USERS)
    assert predictor.post("/", {"instances": IRIS_ROWS}).json()["predictions"] == IRIS_CLASSES


def test_helm_upgrade_to_a_changed_value_rolls_the_operator_and_everything_stays_ready(release, store, built,
                                                                                       predictor, kubectl, core):
    operator_before = running_pod(core, release.namespace, OPERATOR_SELECTOR)
    store_before = running_pod(core, release.namespace, STORE_SELECTOR)
    release.upgrade(user_values(built, **chart_release._merge(USER_OVERRIDES, {"operator": {"logLevel": "DEBUG"}})))
    kubectl.rollout(release.operator, release.namespace)
    operator_after = running_pod(core, release.namespace, OPERATOR_SELECTOR)
    assert operator_after.metadata.uid != operator_before.metadata.uid
    env = {e.name: e.value for e in operator_after.spec.containers[0].env}
    assert env["MLFUNCTIONS_LOG_LEVEL"] == "DEBUG"
    kubectl.wait("modelstore/default", "condition=Ready", release.namespace)
    assert running_pod(core, release.namespace, STORE_SELECTOR).metadata.uid == store_before.metadata.uid
    wait_all_ready(kubectl, USERS)
    # Still serving, and still learning: a new training is picked up by the predict function within seconds.
    trainer = function_service(core, release.function_namespace, function_name(USERS, "iris-train"))
    assert trainer.post("/", headers=invoke_headers(core, USERS, "iris-train")).json()["model"]["version"] == 2
    processes.wait_for(lambda: predictor.post("/", {"instances": IRIS_ROWS}).json()["model"]["version"] == 2, 60,
                       "the predict function to serve version 2", interval=0.5)


def test_helm_uninstall_removes_the_operator_and_its_rbac_and_keeps_crds_and_store(release, kubectl, core):
    release.uninstall()
    namespaced = {"deployment": release.namespace, "serviceaccount": release.namespace}
    for kind, namespace in namespaced.items():
        assert kubectl("get", kind, release.operator, "-n", namespace, "--ignore-not-found") == ""
    for namespace in (release.namespace, release.function_namespace):
        assert kubectl("get", "role,rolebinding", release.operator, "-n", namespace, "--ignore-not-found") == ""
    assert kubectl("get", "clusterrole,clusterrolebinding", release.operator, "--ignore-not-found") == ""
    # The operator's pod goes after the Deployment, by the garbage collector, once kopf has stopped.
    processes.wait_for(lambda: kubectl("get", "pods", "-n", release.namespace, "-l", OPERATOR_SELECTOR,
                                       "-o", "name") == "", 60, "the operator's pod to be gone", interval=0.5)
    # Kept, as the chart's README says: the CRDs (helm never deletes them), the default ModelStore and its data
    # (resource-policy keep), and what users created.
    for crd in ("mlfunctions.mlfunctions.dev", "modelstores.mlfunctions.dev"):
        kubectl("get", "crd", crd)
    kubectl("get", "modelstore", "default", "-n", release.namespace)
    assert running_pod(core, release.namespace, STORE_SELECTOR)
    names = kubectl("get", "mlfunctions", "-n", USERS, "-o", "name").split()
    assert len(names) == 4


def _taken_not_ready(kubectl: Kubectl, name: str) -> bool:
    found = kubectl.json("get", "mlfunction", name, "-n", USERS)
    ready = {c["type"]: c["status"] for c in (found.get("status") or {}).get("conditions", [])}.get("Ready")
    return bool(found["metadata"].get("finalizers")) and ready != "True"


def _assert_credential_mounted(pod: client.V1Pod, kubectl: Kubectl, core: client.CoreV1Api, namespace: str,
                               function: str) -> None:
    """faas-netes's shape: the credential Secret projected at /var/openfaas/secrets/<key>, read-only."""
    secret = f"{function}-model-store"
    volume = next(v for v in pod.spec.volumes if v.projected)
    assert [s.secret.name for s in volume.projected.sources] == [secret]
    mount = next(m for m in pod.spec.containers[0].volume_mounts if m.name == volume.name)
    assert (mount.mount_path, mount.read_only) == ("/var/openfaas/secrets", True)
    # The file the function reads its token from is the Secret's (the function's answers show the token works).
    mounted = kubectl("exec", "-n", namespace, pod.metadata.name, "--", "cat", f"/var/openfaas/secrets/{TOKEN_KEY}")
    assert mounted == secret_value(core, namespace, secret, TOKEN_KEY) != ""


def _volume_dir(node, claim: client.V1PersistentVolumeClaim):
    """The claim's volume on this machine (local-path-provisioner names it <volume>_<namespace>_<claim>)."""
    return next((node.workdir / "volumes").glob(f"{claim.spec.volume_name}_*"))
