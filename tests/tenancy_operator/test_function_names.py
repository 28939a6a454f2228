"""One name, one owner: MLFunctions whose `<namespace>-<name>` reads alike (a-b/c and a/b-c), long ones that
truncate alike, and one named to look like another's hashed name all get Functions, URLs and Secrets of their
own. Functions an earlier release named `<namespace>-<name>` move to the new name: the new one is created, and the
old children (and their token) go once it serves."""

from __future__ import annotations

import pytest
from mlfunctions_harness.model_store import onnx_model
from mlfunctions_operator.naming import FunctionNames, Owner, legacy_function_name
from tenancy_cluster import (
    FUNCTION_NAMESPACE,
    GROUP,
    STORE,
    VERSION,
    condition,
    credential_secret,
    fn_name,
    predict_spec,
)

pytestmark = pytest.mark.integration


def _served(cluster, namespace: str, name: str) -> dict:
    return cluster.wait(lambda: (m := cluster.mlf(namespace, name)) and (m.get("status") or {}).get("url") and m,
                        what=f"{namespace}/{name} to have a URL")


def test_names_that_read_alike_get_functions_of_their_own(cluster, store, tenants):
    ab, a = tenants("a-b", "a")  # <p>-a-b/c and <p>-a/b-c: both `<p>-a-b-c` in the old scheme
    assert legacy_function_name(ab, "c") == legacy_function_name(a, "b-c")
    cluster.create_mlf(ab, "c", predict_spec(f"n-{ab}"))
    cluster.create_mlf(a, "b-c", predict_spec(f"n-{a}"))
    one, other = _served(cluster, ab, "c"), _served(cluster, a, "b-c")
    assert one["status"]["url"] != other["status"]["url"]
    assert one["status"]["function"]["name"] == fn_name(ab, "c") != fn_name(a, "b-c") == \
        other["status"]["function"]["name"]
    for namespace, name in ((ab, "c"), (a, "b-c")):
        assert condition(cluster.mlf(namespace, name), "Stalled")["status"] == "False"
        function = cluster.function(fn_name(namespace, name))
        assert function["metadata"]["labels"]["mlfunctions.dev/owner-namespace"] == namespace
    cluster.delete_mlf(a, "b-c")
    cluster.wait(lambda: cluster.mlf(a, "b-c") is None, what="the one MLFunction to go")
    assert cluster.function(fn_name(ab, "c"))["metadata"]["uid"] == \
        cluster.wait(lambda: cluster.function(fn_name(ab, "c")), what="the other Function")["metadata"]["uid"]
    assert store.live_tokens(ab, "c")


def test_a_name_picked_to_look_like_another_owners_function_does_not_take_it(cluster, store, tenants):
    """The attacker reads how names are made and names its MLFunction `b-c-<hash of the victim>` in namespace
    `<p>-a`, before the victim `<p>-a-b/c` exists: the victim still gets its Function."""
    victim_ns, attacker_ns = tenants("a-b", "a")
    squat = f"b-c-{fn_name(victim_ns, 'c').rsplit('-', 1)[1]}"
    cluster.create_mlf(attacker_ns, squat, predict_spec(f"s-{attacker_ns}"))
    _served(cluster, attacker_ns, squat)
    cluster.create_mlf(victim_ns, "c", predict_spec(f"s-{victim_ns}"))
    victim = _served(cluster, victim_ns, "c")
    assert victim["status"]["function"]["name"] == fn_name(victim_ns, "c")
    assert condition(victim, "Stalled")["status"] == "False"
    assert cluster.function(fn_name(victim_ns, "c"))["metadata"]["labels"]["mlfunctions.dev/owner-namespace"] == \
        victim_ns


def test_long_names_that_truncate_alike_stay_apart(cluster, store, tenants):
    (long_ns,) = tenants("n" * 50)
    first, second = "m" * 62 + "1", "m" * 62 + "2"
    cluster.create_mlf(long_ns, first, predict_spec(f"l-{long_ns[:40]}"))
    cluster.create_mlf(long_ns, second, predict_spec(f"l-{long_ns[:40]}"))
    names = {_served(cluster, long_ns, n)["status"]["function"]["name"] for n in (first, second)}
    assert len(names) == 2 and all(len(n) <= 63 for n in names)
    assert {cluster.function(n)["metadata"]["labels"]["mlfunctions.dev/owner-name"] for n in names} == \
        {first, second}


def _legacy_release(cluster, store, namespace: str, name: str, model: str) -> tuple[FunctionNames, str]:
    """What an earlier release left for MLFunction namespace/name: children under `<namespace>-<name>`, a
    store-wide token in the credential Secret, and the status naming that Function."""
    mlf = cluster.create_mlf(namespace, name, predict_spec(model))
    owner = Owner("MLFunction", namespace, name, mlf["metadata"]["uid"])
    old = FunctionNames.for_function(legacy_function_name(namespace, name))
    token = store.admin.create_token(models=[model], rights=["read"],
                                     description=f"mlfunctions-operator: MLFunction {namespace}/{name}")
    meta = {"namespace": FUNCTION_NAMESPACE, "labels": owner.labels()}
    cluster.custom.create_namespaced_custom_object("openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", {
        "apiVersion": "openfaas.com/v1", "kind": "Function", "metadata": {"name": old.function, **meta},
        "spec": {"name": old.function, "image": "ghcr.io/mlfunctions/predict:0.1.0"}})
    cluster.core.create_namespaced_service_account(FUNCTION_NAMESPACE, {"metadata": {"name": old.function, **meta}})
    cluster.rbac.create_namespaced_role(FUNCTION_NAMESPACE, {"metadata": {"name": old.role, **meta}, "rules": []})
    cluster.rbac.create_namespaced_role_binding(FUNCTION_NAMESPACE, {
        "metadata": {"name": old.role_binding, **meta},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": old.role},
        "subjects": [{"kind": "ServiceAccount", "name": old.service_account, "namespace": FUNCTION_NAMESPACE}]})
    cluster.core.create_namespaced_secret(FUNCTION_NAMESPACE, {
        "metadata": {"name": old.credential_secret, **meta,
                     "annotations": {"mlfunctions.dev/token-id": token.id, "mlfunctions.dev/model-store": STORE,
                                     "mlfunctions.dev/credential-fingerprint": "0" * 16}},
        "stringData": {"model-store-token": token.token}})
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "mlfunctions", name, {"status": {
        "function": {"name": old.function, "namespace": FUNCTION_NAMESPACE},
        "url": f"http://gateway.openfaas:8080/function/{old.function}"}},
        _content_type="application/merge-patch+json")
    return old, token.id


def _gone(cluster, old: FunctionNames) -> bool:
    return (cluster.function(old.function) is None and cluster.secret(FUNCTION_NAMESPACE, old.credential_secret)
            is None and cluster.get(lambda: cluster.core.read_namespaced_service_account(
                old.service_account, FUNCTION_NAMESPACE)) is None
            and cluster.get(lambda: cluster.rbac.read_namespaced_role(old.role, FUNCTION_NAMESPACE)) is None
            and cluster.get(lambda: cluster.rbac.read_namespaced_role_binding(old.role_binding, FUNCTION_NAMESPACE))
            is None)


def test_a_function_under_its_old_name_moves_once_the_new_one_serves(cluster, store, tenants, operator):
    (team,) = tenants("team")
    store.admin.claim(f"old-{team}", team)
    store.admin.upload(f"old-{team}", onnx_model(seed=4), format="onnx")
    operator.stop()  # the earlier release: stopped, its objects left as they were
    try:
        moving, moving_token = _legacy_release(cluster, store, team, "moving", f"old-{team}")
        leaving, leaving_token = _legacy_release(cluster, store, team, "leaving", f"old-{team}")
    finally:
        operator.start()
    new = fn_name(team, "moving")
    cluster.wait(lambda: cluster.function(new), what="the Function under the new name")
    waiting = cluster.wait_condition(team, "moving", "Reconciling", "Migrating")
    assert new in waiting["message"] and moving.function in waiting["message"]
    assert cluster.mlf(team, "moving")["status"]["url"].endswith(f"/function/{moving.function}")
    assert cluster.function(moving.function) is not None  # callers of the old URL still find it

    cluster.report_ready(new)
    cluster.wait(lambda: _gone(cluster, moving), what="the old children to go")
    migrated = cluster.wait(lambda: (m := cluster.mlf(team, "moving")) and
                            m["status"]["url"].endswith(f"/function/{new}") and m, what="status.url to move")
    assert migrated["status"]["function"]["name"] == new
    assert moving_token not in store.live_tokens(team, "moving") and len(store.live_tokens(team, "moving")) == 1
    assert cluster.secret(FUNCTION_NAMESPACE, credential_secret(team, "moving")) is not None
    cluster.wait(lambda: "Migrated" in cluster.events(team, "moving"), what="the Migrated Event")

    # deleted halfway (the new Function never served): both names are cleaned up, both tokens revoked
    cluster.wait(lambda: cluster.function(fn_name(team, "leaving")), what="the other new Function")
    cluster.delete_mlf(team, "leaving")
    cluster.wait(lambda: cluster.mlf(team, "leaving") is None, what="the MLFunction to go")
    assert _gone(cluster, leaving) and _gone(cluster, FunctionNames.for_mlfunction(team, "leaving"))
    assert store.live_tokens(team, "leaving") == [] and leaving_token not in store.live_tokens(team, "leaving")
