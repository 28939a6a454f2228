"""The local OpenFaaS gateway on its pods backend, on a real node: the chart's operator writes Functions, the
gateway (as faas-netes' ServiceAccount, under faas_netes/rbac.yaml) keeps their Deployments and Services and routes
`/function/<name>.<namespace>` to their pods. A train function runs as a pod and stores version 1; a predict
function answers, goes idle, is scaled to zero (Deployment at 0, no pod, Function `Healthy=False ScaledToZero`),
and the next call through the gateway is held until a new pod answers, then answered correctly.

The tests run in file order on one release, as a user's session does. Every wait is on a condition or an event."""

from __future__ import annotations

import time

import pytest
import requests
from chart_release import Kubectl, Release, openfaas_identity, predict_function, train_function, user_values
from function_pods import invoke_headers
from kubernetes import client
from local_openfaas.gateway import process as gateway_process
from mlfunctions_harness import processes
from mlfunctions_harness.mlfunction_cleanup import delete_mlfunctions
from local_openfaas.pods import pool_objects
from mlfunctions_operator.naming import function_name
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(600)

USERS = "pod-users"
# A model name of this module's own: the chart suite's MLFunctions outlive its release (as users' do), a later
# operator adopts them, and the store then says their namespace owns "iris" (tenancy, as it should).
MODEL = "pod-iris"
IDLE = "4s"  # scaleToZeroAfter of the predict function: long enough for a call, short enough for a test
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [5.7, 2.8, 4.1, 1.3], [6.3, 3.3, 6.0, 2.5]]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
CALL_SECONDS = 180.0


def start_gateway(release: Release, pool_size: int = 0) -> gateway_process.GatewayProcess:
    """The gateway on its pods backend, as faas-netes' ServiceAccount (a restart keeps its state dir)."""
    return gateway_process.start(
        release.gateway_port, release.workdir / "gateway", kubeconfig=release.faas_kubeconfig,
        autoscale_interval=0.5, ready_timeout=CALL_SECONDS,
        extra_args=["--backend", "pods", "--namespace", release.function_namespace, "--no-cron",
                    "--pod-pool-size", str(pool_size)])


@pytest.fixture(scope="module")
def release(node, node_api, built, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pods")
    installed = Release(node.control_plane.kubeconfig, workdir)
    installed.faas_kubeconfig = openfaas_identity(node.control_plane, node_api, installed, USERS, workdir)
    installed.gateway_port = processes.free_port()
    installed.gateway = start_gateway(installed)
    try:
        installed.install(user_values(built, console={"enabled": False},
                                      functions={"modelRefreshSeconds": 2, "gatewayURL": installed.gateway.url}))
        yield installed
        delete_mlfunctions(node_api, USERS, timeout=120)  # while the operator runs, so its finalizers finish
        installed.uninstall()
    finally:
        installed.gateway.stop()


def call(release: Release, function: str, path: str = "/", **kwargs) -> requests.Response:
    url = f"{release.gateway.url}/function/{function}.{release.function_namespace}{path}"
    return requests.post(url, timeout=CALL_SECONDS, **kwargs)


def gateway_counter(release: Release, name: str, function: str) -> float:
    text = requests.get(f"{release.gateway.url}/metrics", timeout=30).text
    label = f"{function}.{release.function_namespace}"
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and sample.labels.get("function_name") == label)


def pods_of(core: client.CoreV1Api, namespace: str, function: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"faas_function={function}").items


def test_train_through_the_gateway_runs_on_a_pod_and_stores_version_1(release, kubectl: Kubectl, core):
    kubectl.apply(train_function("iris-train", USERS, MODEL, params={"max_iter": 200}))
    kubectl.wait("mlfunction/iris-train", "condition=Ready", USERS)
    function = function_name(USERS, "iris-train")
    answer = call(release, function, headers=invoke_headers(core, USERS, "iris-train"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == {"name": MODEL, "version": 1}
    [pod] = pods_of(core, release.function_namespace, function)
    described = requests.get(f"{release.gateway.url}/system/function/{function}",
                             params={"namespace": release.function_namespace}, auth=release.gateway.basic_auth,
                             timeout=30).json()
    assert described["availableReplicas"] == 1 and pod.status.phase == "Running"


def test_train_without_its_credential_is_refused_by_the_pod(release, core):
    answer = call(release, function_name(USERS, "iris-train"))
    assert answer.status_code == 401, answer.text


def test_predict_scales_to_zero_when_idle_and_the_next_call_starts_a_pod(release, kubectl: Kubectl, core):
    kubectl.apply(predict_function("iris-predict", USERS, MODEL,
                                   scaling={"minReplicas": 0, "maxReplicas": 2, "scaleToZeroAfter": IDLE}))
    kubectl.wait("mlfunction/iris-predict", "condition=Ready", USERS)
    function = function_name(USERS, "iris-predict")
    namespace = release.function_namespace
    warm = call(release, function, json={"instances": IRIS_ROWS})
    assert warm.status_code == 200, warm.text
    assert warm.json() == {"predictions": IRIS_CLASSES, "model": {"name": MODEL, "version": 1}}

    serving = [pod.metadata.name for pod in pods_of(core, namespace, function)]
    assert serving, "the call was answered by no pod of the function"

    # Idle: the gateway's autoscaler sets the Deployment to 0; the reconciler reports it on the Function.
    kubectl.wait(f"deployment/{function}", "jsonpath={.spec.replicas}=0", namespace)
    for name in serving:
        kubectl.wait(f"pod/{name}", "delete", namespace)
    kubectl.wait(f"function/{function}", "condition=Healthy=False", namespace)
    status = kubectl.json("get", "function", function, "-n", namespace)["status"]
    healthy = {c["type"]: c for c in status["conditions"]}["Healthy"]
    assert healthy["reason"] == "ScaledToZero" and status["availableReplicas"] == 0

    cold_starts = gateway_counter(release, "local_openfaas_cold_starts_total", function)
    started = time.monotonic()
    cold = call(release, function, f"/v2/models/{MODEL}/infer", json={"inputs": [
        {"name": "input", "shape": [3, 4], "datatype": "FP32", "data": [x for row in IRIS_ROWS for x in row]}]})
    took = time.monotonic() - started
    assert cold.status_code == 200, cold.text
    assert cold.json()["outputs"][0]["data"] == IRIS_CLASSES and cold.json()["model_version"] == "1"
    assert gateway_counter(release, "local_openfaas_cold_starts_total", function) == cold_starts + 1
    [pod] = pods_of(core, namespace, function)  # the one pod the call started
    assert not pod.metadata.deletion_timestamp
    print(f"cold start through the gateway on the node: {took:.3f} s")


def test_a_second_namespace_cannot_be_reached_through_this_gateway(release):
    """The gateway serves its function namespace only: a name in another namespace is not found, not proxied."""
    answer = requests.post(f"{release.gateway.url}/function/{function_name(USERS, 'iris-predict')}.{USERS}",
                           json={"instances": IRIS_ROWS}, timeout=30)
    assert answer.status_code == 404, answer.text


def scaled_to_zero(kubectl: Kubectl, core, namespace: str, function: str) -> None:
    kubectl.wait(f"deployment/{function}", "jsonpath={.spec.replicas}=0", namespace)
    for pod in pods_of(core, namespace, function):
        kubectl.wait(f"pod/{pod.metadata.name}", "delete", namespace)


def test_with_a_pod_pool_a_cold_start_is_served_by_a_specialized_pool_pod(release, kubectl: Kubectl, core, built):
    """The gateway restarted with one pool pod per image: the predict functions share the pool of their image; a
    cold start takes the pool pod, which serves until the function's own pod is ready and is then deleted; the
    pool's replacement serves the next function, never the first one's pod."""
    namespace = release.function_namespace
    release.gateway.stop()
    release.gateway = start_gateway(release, pool_size=1)
    pool = pool_objects.pool_name(built["predict"].ref)
    kubectl.wait(f"deployment/{pool}", "condition=Available", namespace)
    template = kubectl.json("get", "deployment", pool, "-n", namespace)["spec"]["template"]["spec"]
    assert [e["name"] for e in template["containers"][0]["env"]] == ["MLFUNCTIONS_POOL_TOKEN_FILE"]
    assert template["automountServiceAccountToken"] is False and template["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"] is True

    served_by = {}
    for name in ("iris-predict", "iris-predict-b"):
        if name != "iris-predict":
            kubectl.apply(predict_function(name, USERS, MODEL,
                                           scaling={"minReplicas": 0, "maxReplicas": 2, "scaleToZeroAfter": IDLE}))
            kubectl.wait(f"mlfunction/{name}", "condition=Ready", USERS)
        function = function_name(USERS, name)
        scaled_to_zero(kubectl, core, namespace, function)
        kubectl.wait(f"deployment/{pool}", "jsonpath={.status.readyReplicas}=1", namespace)
        started = time.monotonic()
        answer = call(release, function, json={"instances": IRIS_ROWS})
        took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": IRIS_CLASSES, "model": {"name": MODEL, "version": 1}}
        claimed = core.list_namespaced_pod(namespace, label_selector=f"{pool_objects.CLAIMED_LABEL}={function}").items
        assert len(claimed) == 1, "the cold start was not served by a pool pod"
        served_by[name] = claimed[0].metadata.name
        assert pool_objects.POOL_LABEL not in claimed[0].metadata.labels  # out of the pool, for good
        # Once the function's own pod is ready, the pool pod is deleted (never handed back).
        kubectl.wait(f"pod/{served_by[name]}", "delete", namespace)
        print(f"cold start through the gateway from a pool pod: {took:.3f} s ({name})")
    assert served_by["iris-predict"] != served_by["iris-predict-b"]
