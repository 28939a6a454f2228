"""Models belong to namespaces. An attacker in another namespace names a victim's model in an MLFunction (to
overwrite it with a train function, or to read it with a predict function), uses a store that does not admit it,
or trains a model first written before the store knew owners: it is Stalled naming the model and its owner, no
token is minted for it, nothing is created for it, and the victim's model, versions and credential stay as they
were. An administrator's grant (ModelStore spec.access) opens exactly what it says, and taking it back closes it."""

from __future__ import annotations

import pytest
from iris_client import Forbidden, ModelStoreClient
from mlfunctions_harness.model_store import onnx_model
from tenancy_cluster import (
    FUNCTION_NAMESPACE,
    STORE,
    condition,
    credential_secret,
    predict_spec,
    train_spec,
)

pytestmark = pytest.mark.integration


def _victim_with_a_trained_model(cluster, store, victim: str, model: str) -> tuple[str, list]:
    """The victim's train MLFunction claims the model; one version is written with its own token (what its train
    function does). Returns the victim's credential Secret's resourceVersion and the model's versions."""
    cluster.create_mlf(victim, "trainer", train_spec(model))
    cluster.wait(lambda: store.admin.owner(model) == victim, what="the victim's claim in the store")
    token = cluster.wait(lambda: cluster.secret(FUNCTION_NAMESPACE, credential_secret(victim, "trainer")) and
                         cluster.secret_value(FUNCTION_NAMESPACE, credential_secret(victim, "trainer"),
                                              "model-store-token"), what="the victim's credential")
    with ModelStoreClient(store.url, token) as own:
        own.upload(model, onnx_model(seed=1), format="onnx")
    secret = cluster.secret(FUNCTION_NAMESPACE, credential_secret(victim, "trainer"))
    return secret.metadata.resource_version, store.versions(model)


def _nothing_for(cluster, store, namespace: str, name: str) -> None:
    assert store.live_tokens(namespace, name) == [], "a token was minted for the attacker"
    assert cluster.owned_in_function_namespace(namespace, name) == [], "children were created for the attacker"


def test_another_namespace_can_neither_train_nor_read_a_claimed_model(cluster, store, tenants):
    victim, eve = tenants("victim", "eve")
    model = f"m-{victim}"
    secret_version, versions = _victim_with_a_trained_model(cluster, store, victim, model)

    cluster.create_mlf(eve, "steal", train_spec(model, dataset="wine"))
    cluster.create_mlf(eve, "peek", predict_spec(model))
    for name, verb in (("steal", "write (train)"), ("peek", "read")):
        stalled = cluster.wait_condition(eve, name, "Stalled", "ModelNotOwned")
        assert f"model {model}" in stalled["message"] and f"belongs to namespace {victim}" in stalled["message"]
        assert f"namespace {eve} has no grant to {verb} it" in stalled["message"]
        cluster.another_pass(eve, name)  # a pass that would have minted or created, had it been allowed
        _nothing_for(cluster, store, eve, name)
        cluster.wait(lambda n=name: "ModelNotOwned" in cluster.events(eve, n), what="the ModelNotOwned Event")
    assert cluster.secret(eve, "steal-invoke") is None  # not even the train function's own Secret

    assert store.admin.owner(model) == victim and store.versions(model) == versions
    assert cluster.secret(FUNCTION_NAMESPACE, credential_secret(victim, "trainer")).metadata.resource_version == \
        secret_version
    assert condition(cluster.mlf(victim, "trainer"), "Stalled")["status"] == "False"


def test_a_grant_opens_what_it_says_and_taking_it_back_closes_it(cluster, store, tenants):
    victim, reader = tenants("victim", "reader")
    model = f"g-{victim}"
    _, versions = _victim_with_a_trained_model(cluster, store, victim, model)
    try:
        cluster.patch_modelstore(STORE, {"spec": {"access": [{"namespace": reader, "models": [model],
                                                              "rights": ["read"]}]}})
        cluster.wait(lambda: store.admin.grants(model) == {reader: ["read"]}, what="the grant in the store")
        cluster.create_mlf(reader, "reads", predict_spec(model))
        cluster.create_mlf(reader, "writes", train_spec(model))
        serving = cluster.wait(lambda: (m := cluster.mlf(reader, "reads")) and
                               condition(m, "ModelAvailable").get("status") == "True" and m, what="the read grant")
        assert serving["status"]["model"]["version"] == versions[-1][0]
        # read is not write: the train function stays refused, and nothing of it exists
        stalled = cluster.wait_condition(reader, "writes", "Stalled", "ModelNotOwned")
        assert "write (train)" in stalled["message"]
        _nothing_for(cluster, store, reader, "writes")
        token = cluster.secret_value(FUNCTION_NAMESPACE, credential_secret(reader, "reads"), "model-store-token")
        with ModelStoreClient(store.url, token) as granted:
            assert granted.get_version(model).version == versions[-1][0]
            with pytest.raises(Forbidden):
                granted.upload(model, onnx_model(seed=2), format="onnx")
    finally:
        cluster.patch_modelstore(STORE, {"spec": {"access": None}})
    # taken back: the store refuses the reader's token at once, and the operator says so
    cluster.wait(lambda: store.admin.grants(model) == {}, what="the grant revoked in the store")
    with ModelStoreClient(store.url, token) as revoked, pytest.raises(Forbidden):
        revoked.get_version(model)
    stalled = cluster.wait_condition(reader, "reads", "Stalled", "ModelNotOwned")
    assert f"belongs to namespace {victim}" in stalled["message"]
    assert store.versions(model) == versions


def test_a_store_other_than_the_default_admits_only_the_namespaces_it_names(cluster, store, tenants, k8s):
    member, eve = tenants("member", "eve")
    closed = f"closed-{member}"
    cluster.modelstore(closed, {"external": {"url": store.url, "adminTokenSecretRef": {"name": "tenancy-admin"}},
                                "namespaces": [member]})
    try:
        cluster.create_mlf(eve, "outsider", predict_spec(f"c-{member}", modelStore=closed))
        cluster.create_mlf(member, "insider", predict_spec(f"c-{member}", modelStore=closed))
        stalled = cluster.wait_condition(eve, "outsider", "Stalled", "ModelStoreNotAllowed")
        assert closed in stalled["message"] and f"namespace {eve}" in stalled["message"]
        cluster.wait(lambda: store.live_tokens(member, "insider"), what="the member's token")
        cluster.another_pass(eve, "outsider")
        _nothing_for(cluster, store, eve, "outsider")
    finally:
        cluster.custom.delete_namespaced_custom_object("mlfunctions.dev", "v1alpha1", "mlfunctions-system",
                                                       "modelstores", closed)


def test_a_model_written_before_owners_goes_only_to_the_namespace_that_wrote_it(cluster, store, tenants):
    """A store from before ownership: versions written by store-wide tokens the operator issued (their description
    names the MLFunction). The attacker's train MLFunction, reconciled first, does not get the model; the
    namespace that wrote every version does."""
    victim, eve = tenants("victim", "eve")
    model = f"old-{victim}"
    legacy = store.admin.create_token(models=[model], rights=["read", "write"],
                                      description=f"mlfunctions-operator: MLFunction {victim}/trainer")
    with ModelStoreClient(store.url, legacy.token) as old:
        old.upload(model, onnx_model(seed=3), format="onnx")
    versions = store.versions(model)
    assert store.admin.owner(model) is None

    cluster.create_mlf(eve, "steal", train_spec(model))
    cluster.create_mlf(eve, "peek", predict_spec(model))
    for name in ("steal", "peek"):
        stalled = cluster.wait_condition(eve, name, "Stalled", "ModelNotOwned")
        assert f"written for namespaces {victim}" in stalled["message"] and "no owner" in stalled["message"]
        _nothing_for(cluster, store, eve, name)
    assert store.admin.owner(model) is None

    # the namespace that wrote every version gets it, whichever of its MLFunctions comes first (here a reader)
    cluster.create_mlf(victim, "reader", predict_spec(model))
    cluster.wait(lambda: store.admin.owner(model) == victim, what="the claim for the namespace that wrote it")
    cluster.wait(lambda: condition(cluster.mlf(victim, "reader"), "ModelAvailable").get("status") == "True",
                 what="the victim's reader to find the model")
    cluster.create_mlf(victim, "trainer", train_spec(model))
    cluster.wait(lambda: store.live_tokens(victim, "trainer"), what="the victim's train token")
    assert store.versions(model) == versions
    cluster.another_pass(eve, "steal")
    assert condition(cluster.mlf(eve, "steal"), "Stalled")["reason"] == "ModelNotOwned"
    assert f"belongs to namespace {victim}" in condition(cluster.mlf(eve, "steal"), "Stalled")["message"]
    _nothing_for(cluster, store, eve, "steal")
