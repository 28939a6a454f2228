"""Namespace eve goes after data-science's model: with tokens the operator would mint for eve (refused), with
a token whose glob covers the model (every call refused), by racing to be the first to write a new model, and
by asking the admin API to hand the model over. Each refusal is a 403 (or 409) whose JSON names the model and
its owner, and data-science's versions, bytes and aliases are exactly as they were."""

from __future__ import annotations

import hashlib
import threading

import pytest
import requests

from conftest import Tenant
from iris_client import Forbidden, NotFound, Rejected
from mlfunctions_harness.model_store import onnx_model

pytestmark = pytest.mark.server

VICTIM = "data-science"
ATTACKER = "eve"


def _victim(store, model: str) -> Tenant:
    """data-science claims `model`, trains two versions and pins production to the first."""
    team = Tenant(store, VICTIM)
    store.admin.claim(model, VICTIM)
    trainer = team.mint(f"train-{model}", [model], ["read", "write"])
    trainer.upload(model, onnx_model(seed=1))
    trainer.upload(model, onnx_model(seed=2))
    store.admin.set_alias(model, "production", 1)
    return team


def _snapshot(store, model: str) -> dict:
    admin = store.admin
    versions = admin.list_versions(model)
    return {
        "versions": [(v.version, v.sha256, v.written_by["namespace"]) for v in versions],
        "bytes": [hashlib.sha256(admin.download(model, v.version).data).hexdigest() for v in versions],
        "aliases": admin.get_version(model, "production").version,
        "owner": admin.owner(model),
        "blobs": [path.name for path in store.blobs(model)],
    }


def _refusal(call) -> dict:
    """The fields of the 403 that `call` must get (model, owner, namespace, right), and its message."""
    with pytest.raises(Forbidden) as refused:
        call()
    return {**refused.value.details, "message": refused.value.message}


def _fields(call) -> dict:
    return {key: value for key, value in _refusal(call).items() if key != "message"}


def test_eve_gets_no_token_for_a_model_data_science_owns(store):
    _victim(store, "iris")
    before = _snapshot(store, "iris")
    for rights in (["read"], ["write"], ["read", "write"], ["delete"], ["alias"]):
        details = _fields(
            lambda rights=rights: store.admin.create_token(["iris"], rights, namespace=ATTACKER)
        )
        assert details == {"model": "iris", "owner": VICTIM, "namespace": ATTACKER, "right": rights[0]}
    assert store.admin.list_tokens(namespace=ATTACKER) == []  # nothing was issued
    assert _snapshot(store, "iris") == before


def test_the_refusal_is_a_403_whose_json_names_model_and_owner(store):
    _victim(store, "iris-http")
    answer = requests.post(
        f"{store.url}/v1/tokens",
        timeout=10,
        headers={"Authorization": f"Bearer {store.admin_token}"},
        json={"namespace": ATTACKER, "models": ["iris-http"], "rights": ["read"]},
    )
    assert answer.status_code == 403
    assert answer.json() == {
        "error": "forbidden",
        "message": "model 'iris-http' belongs to namespace 'data-science'; "
        "namespace 'eve' has no read grant on it",
        "model": "iris-http",
        "owner": VICTIM,
        "namespace": ATTACKER,
        "right": "read",
    }


def test_a_glob_token_of_eve_is_refused_at_every_call_and_changes_nothing(store):
    _victim(store, "iris-glob")
    before = _snapshot(store, "iris-glob")
    eve = Tenant(store, ATTACKER).mint("everything", ["iris-*"], ["read", "write", "delete", "alias"])
    attacks = {
        "list_versions": lambda: eve.list_versions("iris-glob"),
        "get_version": lambda: eve.get_version("iris-glob", "production"),
        "download": lambda: eve.download("iris-glob"),
        "upload": lambda: eve.upload("iris-glob", onnx_model(seed=66)),
        "delete_version": lambda: eve.delete_version("iris-glob", 2),
        "set_alias": lambda: eve.set_alias("iris-glob", "production", 2),
        "delete_alias": lambda: eve.delete_alias("iris-glob", "production"),
    }
    for name, attack in attacks.items():
        details = _refusal(attack)
        assert (details["model"], details["owner"], details["namespace"]) == (
            "iris-glob",
            VICTIM,
            ATTACKER,
        ), name
    assert "iris-glob" not in {m["name"] for m in eve.list_models()}
    assert _snapshot(store, "iris-glob") == before
    assert store.staged() == []


def test_the_first_upload_claims_an_unused_model_for_its_namespace(store):
    eve = Tenant(store, ATTACKER).mint("own", ["eve-model"], ["read", "write"])
    # Claiming to be someone else in the upload's own metadata changes nothing the store records.
    forged = {"written_by": {"namespace": VICTIM, "token_id": "admin"}}
    version = eve.upload("eve-model", onnx_model(seed=3), metadata=forged)
    claim = store.admin.ownership(ATTACKER)
    assert [(c["model"], c["owner"], c["claimed_by"]) for c in claim] == [
        ("eve-model", ATTACKER, eve.whoami()["id"])
    ]
    assert version.written_by == {
        "token_id": eve.whoami()["id"],
        "namespace": ATTACKER,
        "description": f"mlfunctions-operator: MLFunction {ATTACKER}/own",
        "metadata": {"mlfunction": f"{ATTACKER}/own"},
    }
    assert store.admin.get_version("eve-model").written_by == version.written_by
    # Now data-science is the outsider: no token, and a glob token is refused.
    assert (
        _refusal(lambda: store.admin.create_token(["eve-model"], ["read"], namespace=VICTIM))["owner"]
        == ATTACKER
    )
    outsider = Tenant(store, VICTIM).mint("glob", ["eve-*"], ["write"])
    assert _refusal(lambda: outsider.upload("eve-model", onnx_model(seed=4)))["owner"] == ATTACKER


def test_two_namespaces_racing_to_write_a_new_model_leave_one_owner_and_only_its_versions(store):
    model = "contested"
    racers = {ns: Tenant(store, ns).mint("race", [model], ["read", "write"]) for ns in (VICTIM, ATTACKER)}
    start = threading.Barrier(8)
    outcomes: list[tuple[str, str]] = []

    def race(namespace: str, seed: int) -> None:
        start.wait()
        try:
            racers[namespace].upload(model, onnx_model(seed=seed))
            outcomes.append((namespace, "stored"))
        except Forbidden as refused:
            outcomes.append((namespace, f"refused:{refused.owner}"))

    threads = [
        threading.Thread(target=race, args=(ns, 100 + i)) for i in range(4) for ns in (VICTIM, ATTACKER)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    owner = store.admin.owner(model)
    loser = ATTACKER if owner == VICTIM else VICTIM
    assert sorted(outcomes) == sorted([(owner, "stored")] * 4 + [(loser, f"refused:{owner}")] * 4)
    versions = store.admin.list_versions(model)
    assert len(versions) == 4 and {v.written_by["namespace"] for v in versions} == {owner}
    assert len(store.blobs(model)) == 4 and store.staged() == []  # the refused uploads left no bytes


def test_the_admin_api_does_not_hand_an_owned_model_to_another_namespace(store):
    _victim(store, "iris-claim")
    before = _snapshot(store, "iris-claim")
    with pytest.raises(Rejected) as refused:
        store.admin.claim("iris-claim", ATTACKER)
    assert refused.value.status == 409 and refused.value.code == "owned"
    assert refused.value.details == {"model": "iris-claim", "owner": VICTIM}
    assert store.admin.claim("iris-claim", VICTIM)["owner"] == VICTIM  # idempotent for the owner
    assert _snapshot(store, "iris-claim") == before


def test_eve_cannot_use_the_admin_api_with_her_own_token(store):
    eve = Tenant(store, ATTACKER).mint("admin-wannabe", ["*"], ["read", "write", "delete", "alias"])
    for attack in (
        lambda: eve.claim("iris", ATTACKER),
        lambda: eve.grant("iris", ATTACKER, ["read"]),
        lambda: eve.release("iris"),
        lambda: eve.create_token(["iris"], ["read"], namespace=ATTACKER),
        lambda: eve.ownership(),
    ):
        with pytest.raises(Forbidden):
            attack()


def test_a_grant_lets_another_namespace_read_and_nothing_more_until_it_is_taken_back(store):
    _victim(store, "iris-shared")
    before = _snapshot(store, "iris-shared")
    store.admin.grant("iris-shared", "analytics", ["read"])
    analytics = Tenant(store, "analytics")
    reader = analytics.mint("predict", ["iris-shared"], ["read"])
    assert reader.download("iris-shared", "production").version.version == 1
    assert _fields(lambda: store.admin.create_token(["iris-shared"], ["write"], namespace="analytics")) == {
        "model": "iris-shared",
        "owner": VICTIM,
        "namespace": "analytics",
        "right": "write",
    }
    wider = analytics.mint("glob", ["iris-*"], ["read", "write"])
    assert _refusal(lambda: wider.upload("iris-shared", onnx_model(seed=9)))["right"] == "write"
    store.admin.revoke_grant("iris-shared", "analytics")
    assert _refusal(lambda: reader.download("iris-shared"))["owner"] == VICTIM  # the very next request
    assert _snapshot(store, "iris-shared") == before


def test_a_released_model_is_nobodys_until_the_admin_claims_it_again(store):
    team = _victim(store, "iris-released")
    trainer = team.client("train-iris-released")
    store.admin.release("iris-released")
    # It has versions and no owner: no namespaced token may touch it, the former owner's included, and no
    # upload can claim it.
    details = _refusal(lambda: trainer.get_version("iris-released"))
    assert details["owner"] is None and "no owner" in details["message"]
    eve = Tenant(store, ATTACKER).mint("grab", ["iris-released*"], ["write"])
    assert _refusal(lambda: eve.upload("iris-released", onnx_model(seed=5)))["owner"] is None
    store.admin.claim("iris-released", VICTIM)
    assert trainer.get_version("iris-released").version == 2


def test_store_wide_tokens_and_unknown_models_behave_as_before(store):
    """A token without a namespace is limited by its scope only; a namespaced read of a model nobody has used
    finds nothing (404) rather than a refusal."""
    _victim(store, "iris-wide")
    wide = store.client(store.admin.create_token(["iris-wide"], ["read"]).token, retries=0)
    assert wide.get_version("iris-wide").version == 2
    eve = Tenant(store, ATTACKER).mint("unknown", ["never-trained"], ["read"])
    with pytest.raises(NotFound):
        eve.get_version("never-trained")
