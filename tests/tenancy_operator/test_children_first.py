"""Nothing before ownership: an attacker (or an accident) creates an object under a name an MLFunction's child
will have, first; or between the operator's read and its write. The MLFunction is Stalled naming every such
object, nothing is created for it, no token is minted, and the foreign object is left exactly as it was. A plain
create is what makes the race safe: the same write as a server-side apply would have taken the object over."""

from __future__ import annotations

import asyncio

import pytest
from mlfunctions_operator.children import NotOwned, ensure
from mlfunctions_operator.kube import Kube, load_api_client
from mlfunctions_operator.naming import Owner
from tenancy_cluster import (
    FUNCTION_NAMESPACE,
    OPERATOR_NAMESPACE,
    condition,
    credential_secret,
    fn_name,
    predict_spec,
    train_spec,
)

pytestmark = pytest.mark.integration


def _foreign_account(cluster, name: str):
    return cluster.core.create_namespaced_service_account(FUNCTION_NAMESPACE, {
        "metadata": {"name": name, "labels": {"team": "someone-else"}, "annotations": {"keep": "me"}}})


def test_one_foreign_child_means_nothing_is_created_and_no_token_is_minted(cluster, store, tenants):
    (team,) = tenants("team")
    account = _foreign_account(cluster, fn_name(team, "serve"))
    try:
        cluster.create_mlf(team, "serve", predict_spec(f"f-{team}"))
        stalled = cluster.wait_condition(team, "serve", "Stalled", "NotOwned")
        assert f"ServiceAccount {FUNCTION_NAMESPACE}/{fn_name(team, 'serve')}" in stalled["message"]
        cluster.another_pass(team, "serve")
        assert cluster.owned_in_function_namespace(team, "serve") == []
        assert store.live_tokens(team, "serve") == []
        untouched = cluster.core.read_namespaced_service_account(account.metadata.name, FUNCTION_NAMESPACE)
        assert untouched.metadata.resource_version == account.metadata.resource_version
        assert untouched.metadata.labels == {"team": "someone-else"}
        # the name is free again: the operator goes ahead, and takes nothing it should not
        cluster.core.delete_namespaced_service_account(account.metadata.name, FUNCTION_NAMESPACE)
        cluster.wait(lambda: condition(cluster.mlf(team, "serve"), "Stalled").get("status") == "False",
                     what="the MLFunction no longer stalled once the name is free")
        assert store.live_tokens(team, "serve") and cluster.function(fn_name(team, "serve"))
    finally:
        cluster.get(lambda: cluster.core.delete_namespaced_service_account(account.metadata.name,
                                                                           FUNCTION_NAMESPACE))


def test_every_foreign_child_is_named_and_the_own_namespace_counts_too(cluster, store, tenants):
    (team,) = tenants("team")
    secret = cluster.core.create_namespaced_secret(FUNCTION_NAMESPACE, {
        "metadata": {"name": credential_secret(team, "trainer")}, "stringData": {"model-store-token": "mine"}})
    invoke = cluster.core.create_namespaced_secret(team, {"metadata": {"name": "trainer-invoke"},
                                                          "stringData": {"token": "the team's own secret"}})
    try:
        cluster.create_mlf(team, "trainer", train_spec(f"f-{team}"))
        stalled = cluster.wait_condition(team, "trainer", "Stalled", "NotOwned")
        assert f"Secret {FUNCTION_NAMESPACE}/{credential_secret(team, 'trainer')}" in stalled["message"]
        assert f"Secret {team}/trainer-invoke" in stalled["message"]
        cluster.another_pass(team, "trainer")
        assert store.live_tokens(team, "trainer") == [] and store.admin.owner(f"f-{team}") is None
        assert cluster.owned_in_function_namespace(team, "trainer") == []
        for ns, original in ((FUNCTION_NAMESPACE, secret), (team, invoke)):
            now = cluster.core.read_namespaced_secret(original.metadata.name, ns)
            assert now.metadata.resource_version == original.metadata.resource_version and now.data == original.data
    finally:
        cluster.get(lambda: cluster.core.delete_namespaced_secret(secret.metadata.name, FUNCTION_NAMESPACE))


def test_a_name_taken_between_read_and_write_is_not_taken_over(cluster, control_plane, operator_identity, tenants):
    """The operator read 'absent' (its watch cache lagged, or the attacker was quicker) and creates: the create
    fails, the operator reads the object that won, and refuses it."""
    (team,) = tenants("team")
    owner = Owner("MLFunction", team, "raced", "uid-raced")
    name = fn_name(team, "raced")
    account = _foreign_account(cluster, name)
    manifest = {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": FUNCTION_NAMESPACE, "labels": owner.labels()}}

    async def attempt():
        kube = Kube(await load_api_client(str(control_plane.service_account_kubeconfig(
            OPERATOR_NAMESPACE, operator_identity.service_account))))
        try:
            await ensure(kube, owner, manifest, existing=None)  # as if the read had found nothing
        finally:
            await kube.api.close()

    try:
        with pytest.raises(NotOwned, match=f"ServiceAccount {FUNCTION_NAMESPACE}/{name} already exists"):
            asyncio.run(attempt())
        after = cluster.core.read_namespaced_service_account(name, FUNCTION_NAMESPACE)
        assert after.metadata.resource_version == account.metadata.resource_version
        assert after.metadata.labels == {"team": "someone-else"}
    finally:
        cluster.core.delete_namespaced_service_account(name, FUNCTION_NAMESPACE)


def test_a_field_set_at_creation_and_dropped_later_is_removed(cluster, control_plane, operator_identity, tenants):
    """Children are created with a plain create; the operator then owns their fields as its applies do, so a
    field it stops setting (an env variable, a schedule, a Secret key) goes away instead of staying forever."""
    (team,) = tenants("team")
    owner = Owner("MLFunction", team, "pruned", "uid-pruned")
    name = credential_secret(team, "pruned")

    def manifest(data: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                "metadata": {"name": name, "namespace": FUNCTION_NAMESPACE, "labels": owner.labels()}}

    async def run():
        kube = Kube(await load_api_client(str(control_plane.service_account_kubeconfig(
            OPERATOR_NAMESPACE, operator_identity.service_account))))
        try:
            created = await ensure(kube, owner, manifest({"a": "MQ==", "b": "Mg=="}))
            assert created.created
            return (await ensure(kube, owner, manifest({"a": "MQ=="}))).obj
        finally:
            await kube.api.close()

    try:
        updated = asyncio.run(run())
        assert updated["data"] == {"a": "MQ=="}
        assert sorted(cluster.secret(FUNCTION_NAMESPACE, name).data) == ["a"]
    finally:
        cluster.core.delete_namespaced_secret(name, FUNCTION_NAMESPACE)
