"""The chart on the real control plane: its rendered manifests apply server-side (dry run, then for real), it
installs and upgrades with helm, and the operator, run with the installed ServiceAccount's token and nothing else,
brings every example in examples/ to Ready and cleans up after them.

There is no kubelet: the operator's own pod never runs (the operator runs as a local process with the chart's
identity), and the status of what would run in pods is written the way their controllers write it: an OpenFaaS
Function's by the local runtime's status writer, a Deployment's as the Deployment controller would.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from argocd_lua import health, health_script
from chart_support import CHART, EXAMPLES, REPO_ROOT, Helm
from iris_client import ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_harness import controlplane, crds
from mlfunctions_harness.operator_process import OperatorIdentity, OperatorProcess
from local_openfaas.runtime.spec import from_custom_object
from local_openfaas.runtime.status import function_status
from local_openfaas.runtime.supervisor import Snapshot
from skl2onnx import to_onnx
from sklearn import datasets
from sklearn.linear_model import LogisticRegression

OPENFAAS_CRD = "hack/crds/openfaas.com_functions.yaml"
READY_TIMEOUT = 120.0


# -- fixtures ------------------------------------------------------------------------------------------------

@pytest.fixture
def namespaces(k8s):
    """make(n): n more fresh namespaces, deleted afterwards (the `namespace` fixture gives one)."""
    core = client.CoreV1Api(k8s)
    made: list[str] = []

    def make(count: int) -> list[str]:
        names = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(count)]
        for name in names:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        made.extend(names)
        return names

    yield make
    for name in made:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def cluster_helm(helm, control_plane) -> Helm:
    return Helm(helm.binary, control_plane.kubeconfig)


@pytest.fixture
def installed_crds(install_crds):
    install_crds("crds", OPENFAAS_CRD)


@pytest.fixture
def kubectl(control_plane):
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([control_plane.kubectl, "--kubeconfig", str(control_plane.kubeconfig), *args],
                                input=input, capture_output=True, text=True, timeout=180, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run


def _release(namespace: str) -> str:
    return f"mlf-{namespace.removeprefix('t-')}"  # cluster-scoped RBAC objects are named after it: keep it unique


# -- rendered manifests, server-side apply ----------------------------------------------------------------------

def test_rendered_chart_applies_server_side(helm, kubectl, k8s, installed_crds, namespace, namespaces):
    (functions,) = namespaces(1)
    release = _release(namespace)
    manifests = helm.template("--set", f"functionNamespace={functions}", release=release,
                              namespace=namespace).stdout
    operator_name = f"{release}-mlfunctions-operator"
    apps = client.AppsV1Api(k8s)
    try:
        dry = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=manifests)
        assert f"deployment.apps/{operator_name} serverside-applied (server dry run)" in dry.stdout
        with pytest.raises(ApiException) as missing:
            apps.read_namespaced_deployment(operator_name, namespace)
        assert missing.value.status == 404, "a dry run must not create anything"

        kubectl("apply", "--server-side", "-f", "-", input=manifests)
        deployment = apps.read_namespaced_deployment(operator_name, namespace)
        assert deployment.spec.strategy.type == "Recreate"
        store = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
            "mlfunctions.dev", "v1alpha1", namespace, "modelstores", "default")
        assert store["spec"]["storage"]["size"] == "1Gi"
        rbac = client.RbacAuthorizationV1Api(k8s)
        assert rbac.read_cluster_role(operator_name).rules
        assert rbac.read_namespaced_role(operator_name, functions).rules

        # Applying the same manifests again changes nothing (what a GitOps tool does every few minutes).
        generation = deployment.metadata.generation
        kubectl("apply", "--server-side", "-f", "-", input=manifests)
        assert apps.read_namespaced_deployment(operator_name, namespace).metadata.generation == generation
    finally:
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=manifests)


# -- helm install / upgrade / uninstall -------------------------------------------------------------------------

def _operator_env(deployment: client.V1Deployment) -> dict[str, str]:
    (container,) = deployment.spec.template.spec.containers
    return {e.name: e.value for e in container.env if e.value is not None}


def test_helm_install_upgrade_uninstall(cluster_helm, k8s, installed_crds, namespace, namespaces):
    (functions,) = namespaces(1)
    release = _release(namespace)
    apps, rbac = client.AppsV1Api(k8s), client.RbacAuthorizationV1Api(k8s)
    objects = client.CustomObjectsApi(k8s)
    operator_name = f"{release}-mlfunctions-operator"
    installed = cluster_helm.run("install", release, str(CHART), "--namespace", namespace,
                                 "--set", f"functionNamespace={functions}")
    try:
        assert "STATUS: deployed" in installed.stdout
        assert f"rollout status deployment/{operator_name}" in installed.stdout, "NOTES say what to do next"
        before = apps.read_namespaced_deployment(operator_name, namespace)
        assert _operator_env(before)["MLFUNCTIONS_LOG_LEVEL"] == "INFO"
        assert objects.get_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace, "modelstores",
                                                    "default")

        cluster_helm.run("upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values",
                         "--set", "operator.logLevel=DEBUG", "--set", "functions.modelRefreshSeconds=10")
        after = apps.read_namespaced_deployment(operator_name, namespace)
        env = _operator_env(after)
        assert (env["MLFUNCTIONS_LOG_LEVEL"], env["MLFUNCTIONS_MODEL_REFRESH_SECONDS"]) == ("DEBUG", "10")
        assert env["MLFUNCTIONS_FUNCTION_NAMESPACE"] == functions, "--reuse-values kept the install's values"
        assert after.metadata.generation > before.metadata.generation
        assert after.spec.selector.match_labels == before.spec.selector.match_labels

        # A bad value is refused before anything changes: the release stays on the good revision.
        refused = cluster_helm.run("upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values",
                                   "--set", "operator.logLevel=LOUD", check=False)
        assert refused.returncode != 0 and "/operator/logLevel" in refused.stderr
        history = json.loads(cluster_helm.run("history", release, "--namespace", namespace, "-o", "json").stdout)
        assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]
        assert _operator_env(apps.read_namespaced_deployment(operator_name, namespace))["MLFUNCTIONS_LOG_LEVEL"] \
            == "DEBUG"
    finally:
        cluster_helm.run("uninstall", release, "--namespace", namespace, "--wait=false")

    with pytest.raises(ApiException) as gone:
        rbac.read_cluster_role(operator_name)
    assert gone.value.status == 404
    # The default store outlives the release (helm.sh/resource-policy: keep): it holds the models.
    assert objects.get_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace, "modelstores", "default")


# -- the first install, on a cluster that has never seen mlfunctions -------------------------------------------

@pytest.mark.integration
def test_first_install_on_an_empty_cluster(helm, tmp_path):
    """The README's `helm install`, on a control plane of its own (the session's already has the CRDs): helm
    creates the CRDs from the chart's crds/ and then the default ModelStore, which needs them."""
    with controlplane.LocalControlPlane(workdir=tmp_path / "cluster") as cluster:
        on_cluster = Helm(helm.binary, cluster.kubeconfig)
        install = ("install", "mlfunctions", str(CHART), "--namespace", "mlfunctions-system", "--create-namespace")
        # OpenFaaS not installed yet: refused, and the message names what is missing (docs/troubleshooting.md).
        premature = on_cluster.run(*install, check=False)
        assert premature.returncode != 0 and 'namespaces "openfaas-fn" not found' in premature.stderr
        on_cluster.run("uninstall", "mlfunctions", "--namespace", "mlfunctions-system")

        with cluster.api_client() as api:
            client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
                name="openfaas-fn")))
            crds.install(api, [REPO_ROOT / OPENFAAS_CRD])  # what installing OpenFaaS provides
            assert "STATUS: deployed" in on_cluster.run(*install).stdout
            store = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "mlfunctions.dev", "v1alpha1", "mlfunctions-system", "modelstores", "default")
            assert store["spec"] == {"replicas": 1, "storage": {"size": "1Gi"}}
            established = {c.metadata.name: {x.type: x.status for x in c.status.conditions}.get("Established")
                           for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
            assert established["mlfunctions.mlfunctions.dev"] == established["modelstores.mlfunctions.dev"] == "True"


# -- the operator under the chart's RBAC brings every example to Ready ----------------------------------------

def _onnx_classifier(load) -> bytes:
    features, labels = load(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    return to_onnx(model, features[:1].astype(np.float32), options={"zipmap": False}).SerializeToString()


def _examples(kubectl, user_namespace: str, operator_namespace: str) -> list[dict]:
    """examples/ as a GitOps tool renders it (kustomize), moved into this test's namespaces."""
    rendered = kubectl("kustomize", str(EXAMPLES)).stdout
    moved = {"data-science": user_namespace, "mlfunctions-system": operator_namespace}
    documents = []
    for document in yaml.safe_load_all(rendered):
        if document["kind"] == "Namespace":
            continue  # the test's namespaces exist already
        document["metadata"]["namespace"] = moved[document["metadata"]["namespace"]]
        documents.append(document)
    return documents


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _supply_function_statuses(objects: client.CustomObjectsApi, namespace: str) -> None:
    """What OpenFaaS reports once a Function's replicas run: min replicas up, or none when it may scale to zero."""
    for function in objects.list_namespaced_custom_object("openfaas.com", "v1", namespace, "functions")["items"]:
        status = function.get("status") or {}
        if status.get("observedGeneration") == function["metadata"]["generation"]:
            continue
        labels = function["spec"].get("labels") or {}
        replicas = 0 if labels.get("com.openfaas.scale.zero") == "true" else int(labels["com.openfaas.scale.min"])
        spec = from_custom_object(function)
        written = function_status(spec, Snapshot(replicas=replicas, available=replicas, crashes=0), "", status,
                                  _now())
        objects.patch_namespaced_custom_object_status("openfaas.com", "v1", namespace, "functions",
                                                      spec.name, {"status": written})


def _supply_deployment_statuses(apps: client.AppsV1Api, namespace: str) -> None:
    """What the Deployment controller reports once the pods of the operator's iris-server Deployments run."""
    selector = "app.kubernetes.io/managed-by=mlfunctions-operator"
    for deployment in apps.list_namespaced_deployment(namespace, label_selector=selector).items:
        if (deployment.status.observed_generation or 0) == deployment.metadata.generation:
            continue
        replicas = deployment.spec.replicas
        apps.patch_namespaced_deployment_status(deployment.metadata.name, namespace, {"status": {
            "observedGeneration": deployment.metadata.generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                            "message": "Deployment has minimum availability.", "lastUpdateTime": _now(),
                            "lastTransitionTime": _now()}]}})


def _ready(obj: dict) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def _summary(objs: list[dict]) -> str:
    return "\n".join(f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}: "
                     f"{json.dumps((o.get('status') or {}).get('conditions'))}" for o in objs)


@pytest.fixture
def iris_store(tmp_path):
    token = f"admin-{secrets.token_hex(16)}"
    url, process = start_iris_server(tmp_path / "store", token)
    yield url, token
    stop_iris_server(process)


def test_examples_become_ready_under_chart_rbac(control_plane, cluster_helm, kubectl, kstatus, k8s, installed_crds,
                                                 namespace, namespaces, iris_store, tmp_path):
    functions, users = namespaces(2)
    release = _release(namespace)
    store_url, admin_token = iris_store
    core, apps, objects = client.CoreV1Api(k8s), client.AppsV1Api(k8s), client.CustomObjectsApi(k8s)

    # The default store is an external iris-server (this machine's); its admin token in a Secret, as documented.
    core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="store-admin"),
        data={"admin-token": base64.b64encode(admin_token.encode()).decode()}))
    cluster_helm.run("install", release, str(CHART), "--namespace", namespace,
                     "--set", f"functionNamespace={functions}",
                     "--set", f"modelStores.default.external.url={store_url}",
                     "--set", "modelStores.default.external.adminTokenSecretRef.name=store-admin")
    with ModelStoreClient(store_url, admin_token) as admin:
        # Models are a namespace's (docs/security.md): the store's administrator gives these two to the users'
        # namespace before seeding them, or no MLFunction there may read or retrain them.
        for model in ("iris", "digits"):
            admin.claim(model, users)
        admin.upload("iris", _onnx_classifier(datasets.load_iris), format="onnx",
                     metadata={"task": "classification", "dataset": "iris", "estimator": "LogisticRegression"})
        admin.upload("digits", _onnx_classifier(datasets.load_digits), format="onnx",
                     metadata={"task": "classification", "dataset": "digits", "estimator": "LogisticRegression"})

    operator_name = f"{release}-mlfunctions-operator"
    deployment = apps.read_namespaced_deployment(operator_name, namespace)
    account = deployment.spec.template.spec.service_account_name
    # The operator gets the installed Deployment's configuration; only the health port is this machine's, and
    # resync/back-off are shortened so the test does not wait on timers.
    env = {k: v for k, v in _operator_env(deployment).items() if k != "MLFUNCTIONS_HEALTH_ADDRESS"}
    env.update(MLFUNCTIONS_RESYNC_SECONDS="5", MLFUNCTIONS_RETRY_MAX_SECONDS="4", MLFUNCTIONS_LOG_FORMAT="text")
    examples = _examples(kubectl, users, namespace)
    manifest = yaml.safe_dump_all(examples)
    identity = OperatorIdentity(namespace=namespace, service_account=account, function_namespace=functions)
    operator = OperatorProcess(control_plane, identity, env=env, log_path=tmp_path / "operator.log")
    try:
        with operator:
            kubectl("apply", "--server-side", "-f", "-", input=manifest)
            mlfunctions = [e["metadata"]["name"] for e in examples if e["kind"] == "MLFunction"]
            assert len(mlfunctions) == 6

            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                _supply_function_statuses(objects, functions)
                _supply_deployment_statuses(apps, namespace)
                current = [objects.get_namespaced_custom_object(
                    "mlfunctions.dev", "v1alpha1", e["metadata"]["namespace"], e["kind"].lower() + "s",
                    e["metadata"]["name"]) for e in examples] + [objects.get_namespaced_custom_object(
                        "mlfunctions.dev", "v1alpha1", namespace, "modelstores", "default")]
                if all(_ready(o) for o in current):
                    break
                assert time.monotonic() < deadline, (
                    f"not Ready after {READY_TIMEOUT:.0f}s:\n{_summary([o for o in current if not _ready(o)])}\n"
                    f"operator log:\n{operator.log_tail()}")
                time.sleep(0.5)

            # What the README tells users to run.
            kubectl("wait", "--for=condition=Ready", "mlf", "--all", "-n", users, "--timeout=30s")
            kubectl("wait", "--for=condition=Ready", "modelstore", "--all", "-n", namespace, "--timeout=30s")
            table = kubectl("get", "mlf", "-n", users).stdout
            assert "0 (idle)" in table and "1/1" in table, table
            assert "mlfunction.mlfunctions.dev/iris-predict" in kubectl("get", "all", "-n", users).stdout
            assert "minReplicas" in kubectl("explain", "mlfunction.spec.scaling").stdout
            described = kubectl("describe", "mlf", "iris-predict", "-n", users).stdout
            assert "ModelAvailable" in described and "Events:" in described

            by_name = {o["metadata"]["name"]: o for o in current}
            idle = next(c for c in by_name["iris-predict-v1"]["status"]["conditions"] if c["type"] == "Ready")
            assert idle["reason"] == "ScaledToZero"
            assert by_name["iris-predict"]["status"]["model"] == {"name": "iris", "version": 1}
            assert by_name["team-models"]["status"]["url"].startswith(f"http://iris-server-team-models.{namespace}")

            # GitOps tools agree: kstatus says Current, Argo CD says Healthy.
            assert [r["status"] for r in kstatus(current)] == ["Current"] * len(current)
            assert {health(health_script(o["kind"]), o)["status"] for o in current} == {"Healthy"}

            # Deleting them through the finalizer: the credential is revoked, the function and its RBAC removed.
            kubectl("delete", "-f", "-", "--wait=false", input=manifest)
            deadline = time.monotonic() + READY_TIMEOUT
            while remaining := objects.list_namespaced_custom_object(
                    "mlfunctions.dev", "v1alpha1", users, "mlfunctions")["items"]:
                assert time.monotonic() < deadline, (
                    f"MLFunctions not deleted after {READY_TIMEOUT:.0f}s: {[m['metadata']['name'] for m in remaining]}"
                    f"\noperator log:\n{operator.log_tail()}")
                time.sleep(0.5)
            leftovers = objects.list_namespaced_custom_object("openfaas.com", "v1", functions, "functions")["items"]
            assert leftovers == []
            assert core.list_namespaced_secret(
                functions, label_selector="app.kubernetes.io/managed-by=mlfunctions-operator").items == []
            with ModelStoreClient(store_url, admin_token) as admin:
                live = [t for t in admin.list_tokens() if not t.get("revoked")
                        and str(t.get("description", "")).startswith("mlfunctions-operator:")]
            assert live == [], f"tokens left unrevoked: {live}"
        log = Path(operator.log_path).read_text()
        assert "forbidden" not in log.lower(), f"the chart's RBAC denied the operator something:\n{log[-5000:]}"
    finally:
        _release_finalizers(objects, users)  # after a failure: never leave the namespace stuck terminating
        cluster_helm.run("uninstall", release, "--namespace", namespace, "--wait=false")


def _release_finalizers(objects: client.CustomObjectsApi, namespace: str) -> None:
    for mlfunction in objects.list_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace,
                                                            "mlfunctions")["items"]:
        objects.patch_namespaced_custom_object("mlfunctions.dev", "v1alpha1", namespace, "mlfunctions",
                                               mlfunction["metadata"]["name"], {"metadata": {"finalizers": None}})
