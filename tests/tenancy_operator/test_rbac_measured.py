"""Least privilege, measured: a control plane of its own records every request of the operator's ServiceAccount
(the API server's audit log) over a representative run: MLFunctions of both tasks created, changed, edited by hand,
given a revoked token, moved from an old name and deleted (the finalizer); ModelStores deployed, created on demand
and external. Every request must be one the chart's RBAC allows, and every verb the chart grants must have been
needed by one (or be on the short list below, of permissions the API server checks without a request)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from iris_client import ModelStoreClient
from kubernetes import client
from mlfunctions_harness import crds
from mlfunctions_harness.controlplane import LocalControlPlane
from mlfunctions_harness.model_store import onnx_model, start_iris_server, stop_iris_server
from mlfunctions_harness.operator_process import (
    OperatorProcess,
    install_operator_identity,
    render_operator_rbac,
)
from mlfunctions_operator.naming import FunctionNames, Owner, legacy_function_name
from rbac_audit import AUDIT_POLICY, grants, needed, uses
from tenancy_cluster import (
    ADMIN_TOKEN,
    FUNCTION_NAMESPACE,
    GROUP,
    OPERATOR_NAMESPACE,
    VERSION,
    Cluster,
    condition,
    credential_secret,
    fn_name,
    predict_spec,
    train_spec,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TEAM = "team-rbac"
# Checked by the API server without a request of their own, so the audit log cannot show them:
IMPLICIT = {
    # ownerReferences with blockOwnerDeletion need `update` on the owner's finalizers where the
    # OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, some distributions).
    ("update", "mlfunctions.dev", "mlfunctions/finalizers"),
    ("update", "mlfunctions.dev", "modelstores/finalizers"),
}


@pytest.fixture(scope="module")
def audited(tmp_path_factory, control_plane):
    """The representative run; yields the operator's uses, the chart's grants and the run's own checks."""
    del control_plane  # the session's cluster is not this one: its audit log would mix every suite's requests
    work = tmp_path_factory.mktemp("rbac")
    policy = work / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY.format(namespace=OPERATOR_NAMESPACE))
    with LocalControlPlane(workdir=work / "cp", audit_policy=policy) as cluster, cluster.api_client() as api:
        crds.install(api, [REPO_ROOT / "crds", REPO_ROOT / "hack/crds/openfaas.com_functions.yaml"])
        identity = install_operator_identity(cluster, OPERATOR_NAMESPACE, FUNCTION_NAMESPACE)
        url, store_process = start_iris_server(work / "store", admin_token=ADMIN_TOKEN)
        operator = OperatorProcess(cluster, identity, log_path=work / "operator.log", env={
            "MLFUNCTIONS_RESYNC_SECONDS": "2", "MLFUNCTIONS_RETRY_MAX_SECONDS": "4",
            "MLFUNCTIONS_ORPHAN_TOKEN_GRACE_SECONDS": "1", "MLFUNCTIONS_DEFAULT_MODEL_STORE": "ondemand",
            "MLFUNCTIONS_LOG_FORMAT": "text"})
        try:
            operator.start()
            with ModelStoreClient(url, ADMIN_TOKEN) as admin:
                _representative_run(Cluster(api, operator), operator, admin, url)
        finally:
            operator.stop()
            stop_iris_server(store_process)
        documents = render_operator_rbac(OPERATOR_NAMESPACE, FUNCTION_NAMESPACE, cluster.version)
        username = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{identity.service_account}"
        yield uses(cluster.audit_log, username), grants(documents)


def _representative_run(cluster: Cluster, operator: OperatorProcess, admin: ModelStoreClient, url: str) -> None:
    core, apps = cluster.core, client.AppsV1Api(cluster.core.api_client)
    core.create_namespace({"metadata": {"name": TEAM}})
    # an external store, and one the operator deploys
    core.create_namespaced_secret(OPERATOR_NAMESPACE, {"metadata": {"name": "ext-admin"},
                                                       "stringData": {"admin-token": ADMIN_TOKEN}})
    cluster.modelstore("ext", {"external": {"url": url, "adminTokenSecretRef": {"name": "ext-admin"}},
                               "namespaces": ["*"], "access": [{"namespace": "guests", "models": ["shared"]}]})
    cluster.modelstore("own", {"storage": {"size": "1Gi"}})
    admin.claim("served", TEAM)
    admin.upload("served", onnx_model(seed=5), format="onnx")

    # an MLFunction of each task on the external store, and one on the default store (created on demand)
    cluster.create_mlf(TEAM, "serve", predict_spec("served", modelStore="ext"))
    cluster.create_mlf(TEAM, "train", {**train_spec("trained", schedule="@daily"), "modelStore": "ext"})
    cluster.create_mlf(TEAM, "default", predict_spec("elsewhere"))
    for name in ("serve", "train"):
        cluster.wait(lambda n=name: cluster.function(fn_name(TEAM, n)) and
                     cluster.secret(FUNCTION_NAMESPACE, credential_secret(TEAM, n)), what=f"{name}'s children")
    cluster.wait(lambda: cluster.get(lambda: cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", "ondemand")), what="the default ModelStore")
    cluster.wait(lambda: cluster.get(lambda: apps.read_namespaced_deployment("iris-server-own", OPERATOR_NAMESPACE)),
                 what="the deployed store's Deployment")
    cluster.wait(lambda: (s := cluster.custom.get_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE,
                                                                           "modelstores", "ext"))
                 and condition(s, "Ready").get("status") == "True" and (s.get("status") or {}).get("grants"),
                 what="the external store Ready, its grants applied")
    cluster.report_ready(fn_name(TEAM, "serve"))

    # changes: a spec change, a new model (a new token, the old one revoked), a store change
    cluster.patch_mlf(TEAM, "serve", {"spec": {"scaling": {"maxReplicas": 3}}})
    old_token = cluster.secret(FUNCTION_NAMESPACE, credential_secret(TEAM, "train")).metadata.annotations[
        "mlfunctions.dev/token-id"]
    cluster.patch_mlf(TEAM, "train", {"spec": {"model": {"name": "trained-2"}}})
    cluster.wait(lambda: cluster.secret(FUNCTION_NAMESPACE, credential_secret(TEAM, "train")).metadata.annotations[
        "mlfunctions.dev/token-id"] != old_token, what="train's new token")
    cluster.patch_modelstore("own", {"spec": {"image": "example.com/iris-server:2"}})
    cluster.wait(lambda: apps.read_namespaced_deployment("iris-server-own", OPERATOR_NAMESPACE)
                 .spec.template.spec.containers[0].image == "example.com/iris-server:2", what="the store's new image")

    # hand edits of every kind of child: each is put back (a patch)
    names = FunctionNames.for_mlfunction(TEAM, "serve")
    drift = {"metadata": {"labels": {"app.kubernetes.io/part-of": "edited"}}}
    core.patch_namespaced_service_account(names.service_account, FUNCTION_NAMESPACE, drift)
    core.patch_namespaced_secret(names.credential_secret, FUNCTION_NAMESPACE, drift)
    core.patch_namespaced_service("iris-server-own", OPERATOR_NAMESPACE, drift)
    core.patch_namespaced_persistent_volume_claim("iris-server-own-data", OPERATOR_NAMESPACE, drift)
    policy = client.PolicyV1Api(cluster.core.api_client)
    policy.patch_namespaced_pod_disruption_budget("iris-server-own", OPERATOR_NAMESPACE, drift)
    for read in (lambda: core.read_namespaced_service_account(names.service_account, FUNCTION_NAMESPACE),
                 lambda: core.read_namespaced_secret(names.credential_secret, FUNCTION_NAMESPACE),
                 lambda: core.read_namespaced_service("iris-server-own", OPERATOR_NAMESPACE),
                 lambda: core.read_namespaced_persistent_volume_claim("iris-server-own-data", OPERATOR_NAMESPACE),
                 lambda: policy.read_namespaced_pod_disruption_budget("iris-server-own", OPERATOR_NAMESPACE)):
        cluster.wait(lambda r=read: r().metadata.labels["app.kubernetes.io/part-of"] == "mlfunctions",
                     what="a hand edit undone")

    # a token revoked by hand is replaced; one issued and never stored is revoked by the store's sweep
    revoked = cluster.secret(FUNCTION_NAMESPACE, credential_secret(TEAM, "serve")).metadata.annotations[
        "mlfunctions.dev/token-id"]
    admin.revoke_token(revoked)
    cluster.wait(lambda: cluster.secret(FUNCTION_NAMESPACE, credential_secret(TEAM, "serve")).metadata.annotations[
        "mlfunctions.dev/token-id"] != revoked, what="the replaced token")
    orphan = admin.create_token(models=["served"], rights=["read"], description=f"mlfunctions-operator: "
                                f"MLFunction {TEAM}/crashed")
    cluster.wait(lambda: next(t for t in admin.list_tokens() if t["id"] == orphan.id)["revoked"],
                 what="the sweep to revoke an unstored token")

    # a Function under the name an earlier release gave it moves; then everything is deleted
    operator.stop()
    moved = cluster.create_mlf(TEAM, "moved", predict_spec("served", modelStore="ext"))
    old = FunctionNames.for_function(legacy_function_name(TEAM, "moved"))
    meta = {"namespace": FUNCTION_NAMESPACE,
            "labels": Owner("MLFunction", TEAM, "moved", moved["metadata"]["uid"]).labels()}
    cluster.custom.create_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", {
        "apiVersion": "openfaas.com/v1", "kind": "Function", "metadata": {"name": old.function, **meta},
        "spec": {"name": old.function, "image": "ghcr.io/mlfunctions/predict:0.1.0"}})
    core.create_namespaced_secret(FUNCTION_NAMESPACE, {"metadata": {"name": old.credential_secret, **meta},
                                                       "data": {"model-store-token": base64.b64encode(b"x").decode()}})
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, TEAM, "mlfunctions", "moved", {
        "status": {"function": {"name": old.function, "namespace": FUNCTION_NAMESPACE}}},
        _content_type="application/merge-patch+json")
    # the per-function Role and RoleBinding the previous release made (none are made now): go with their MLFunction
    serve = cluster.mlf(TEAM, "serve")
    legacy = {"namespace": FUNCTION_NAMESPACE,
              "labels": Owner("MLFunction", TEAM, "serve", serve["metadata"]["uid"]).labels()}
    cluster.rbac.create_namespaced_role(FUNCTION_NAMESPACE, {"metadata": {"name": names.role, **legacy}, "rules": [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [names.credential_secret], "verbs": ["get"]}]})
    cluster.rbac.create_namespaced_role_binding(FUNCTION_NAMESPACE, {
        "metadata": {"name": names.role_binding, **legacy},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.role},
        "subjects": [{"kind": "ServiceAccount", "name": names.service_account, "namespace": FUNCTION_NAMESPACE}]})
    operator.start()
    cluster.wait(lambda: cluster.function(fn_name(TEAM, "moved")), what="the moved Function")
    cluster.report_ready(fn_name(TEAM, "moved"))
    cluster.wait(lambda: cluster.function(old.function) is None, what="the old Function to go")
    for name in ("serve", "train", "default", "moved"):
        cluster.delete_mlf(TEAM, name)
    for name in ("serve", "train", "default", "moved"):
        cluster.wait(lambda n=name: cluster.mlf(TEAM, n) is None, what=f"{name} to be finalized")
    assert cluster.get(lambda: cluster.rbac.read_namespaced_role_binding(names.role_binding, FUNCTION_NAMESPACE)) \
        is None and cluster.get(lambda: cluster.rbac.read_namespaced_role(names.role, FUNCTION_NAMESPACE)) is None


def test_every_request_of_the_operator_was_allowed_by_the_chart(audited):
    used, granted = audited
    assert used, "the audit log holds no request of the operator's"
    refused = sorted(str(use) for use, status in used.items() if status == 403)
    assert not refused, f"the API server refused the operator: {refused}"
    uncovered = sorted(str(use) for use in used if not any(g.allows(use) for g in granted))
    assert not uncovered, f"the chart does not grant: {uncovered}"


def test_the_chart_grants_nothing_the_operator_did_not_need(audited):
    used, granted = audited
    unused = sorted(str(g) for g in granted
                    if (g.verb, g.group, g.resource) not in IMPLICIT and not needed(g, list(used), granted))
    assert not unused, f"granted but never needed in the run (or granted twice): {unused}"


def test_secrets_are_never_listed_or_watched_and_cluster_wide_writes_are_few(audited):
    used, granted = audited
    assert not [u for u in used if u.resource == "secrets" and u.verb in ("list", "watch")]
    assert not [g for g in granted if g.resource == "secrets" and g.verb in ("list", "watch", "*")]
    cluster_writes = {(g.verb, g.resource) for g in granted if g.namespace is None and
                      g.verb in ("create", "patch", "update", "delete")}
    # Only what lives next to MLFunctions, in namespaces the chart cannot know: their Events, their invoke
    # Secret, and kopf's bookkeeping and the status of MLFunctions themselves.
    assert cluster_writes == {("create", "events"), ("create", "secrets"), ("patch", "mlfunctions"),
                              ("patch", "mlfunctions/status"), ("update", "mlfunctions/finalizers")}
    in_user_namespace = {(u.verb, u.resource) for u in used if u.namespace == TEAM}
    assert ("create", "secrets") in in_user_namespace and ("delete", "secrets") not in in_user_namespace


def test_the_run_covered_both_tasks_both_kinds_of_store_and_the_finalizer(audited):
    used, _ = audited
    seen = {(u.verb, u.resource, u.namespace) for u in used}
    for expected in [("create", "functions", FUNCTION_NAMESPACE), ("delete", "functions", FUNCTION_NAMESPACE),
                     ("create", "secrets", TEAM), ("create", "deployments", OPERATOR_NAMESPACE),
                     ("create", "modelstores", OPERATOR_NAMESPACE), ("patch", "modelstores/status",
                                                                     OPERATOR_NAMESPACE),
                     ("delete", "rolebindings", FUNCTION_NAMESPACE), ("patch", "deployments", OPERATOR_NAMESPACE)]:
        assert expected in seen, f"the run did not exercise {expected}"
