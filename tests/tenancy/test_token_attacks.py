"""Tokens that are not what they claim: forged secrets, revoked tokens, ids spliced onto other secrets, and a
train function's token trying what its split rights no longer allow (write is not delete, nor alias)."""

from __future__ import annotations

import hashlib

import pytest

from conftest import Tenant
from iris_client import Forbidden, Unauthorized
from mlfunctions_harness.model_store import onnx_model

pytestmark = pytest.mark.server

TEAM = "data-science"


@pytest.fixture(scope="module")
def team(store) -> Tenant:
    tenant = Tenant(store, TEAM)
    store.admin.claim("tokens-model", TEAM)
    trainer = tenant.mint("train", ["tokens-model"], ["read", "write"])
    trainer.upload("tokens-model", onnx_model(seed=1))
    trainer.upload("tokens-model", onnx_model(seed=2))
    store.admin.set_alias("tokens-model", "production", 1)
    tenant.mint("predict", ["tokens-model"], ["read"])
    return tenant


def _state(store) -> tuple:
    versions = store.admin.list_versions("tokens-model")
    return (
        [(v.version, v.sha256) for v in versions],
        store.admin.get_version("tokens-model", "production").version,
        hashlib.sha256(store.admin.download("tokens-model").data).hexdigest(),
    )


def _everything(client) -> list:
    """Every call a token could make on the model, each expected to be refused the same way."""
    return [
        lambda: client.list_versions("tokens-model"),
        lambda: client.download("tokens-model"),
        lambda: client.upload("tokens-model", onnx_model(seed=99)),
        lambda: client.delete_version("tokens-model", 2),
        lambda: client.set_alias("tokens-model", "production", 2),
        lambda: client.whoami(),
    ]


def _forgeries(store, team) -> dict[str, str]:
    trainer = team.tokens["train"].token
    reader = team.tokens["predict"].token
    _, trainer_id, trainer_secret = trainer.split("_", 2)
    reader_id = reader.split("_", 2)[1]
    return {
        "made-up secret": f"iris_{trainer_id}_{'A' * 43}",
        "reader id, trainer secret": f"iris_{reader_id}_{trainer_secret}",
        "made-up id": f"iris_{'0' * 16}_{trainer_secret}",
        "secret alone": trainer_secret,
        "admin token with a suffix": store.admin_token + "x",
        "admin token as a scoped id": f"iris_{trainer_id}_{store.admin_token}",
    }


def test_forged_tokens_are_401_and_change_nothing(store, team):
    before = _state(store)
    for name, forged in _forgeries(store, team).items():
        client = store.client(forged, retries=0)
        for call in _everything(client):
            with pytest.raises(Unauthorized, match="invalid or has been revoked|Bearer"):
                call()
                pytest.fail(f"{name} was accepted")
    assert _state(store) == before


def test_a_revoked_token_is_401_from_its_next_request(store, team):
    leaked = team.mint("leaked", ["tokens-model"], ["read", "write"])
    assert leaked.get_version("tokens-model").version == 2
    store.admin.revoke_token(team.tokens["leaked"].id)
    before = _state(store)
    for call in _everything(leaked):
        with pytest.raises(Unauthorized):
            call()
    assert _state(store) == before


def test_a_train_token_can_write_but_neither_delete_nor_move_aliases(store, team):
    trainer = team.client("train")
    before = _state(store)
    for attack in (
        lambda: trainer.delete_version("tokens-model", 2),
        lambda: trainer.set_alias("tokens-model", "production", 2),
        lambda: trainer.delete_alias("tokens-model", "production"),
    ):
        with pytest.raises(Forbidden, match="has no (delete|alias) right"):
            attack()
    assert _state(store) == before


def test_delete_and_alias_are_rights_of_their_own(store, team):
    releaser = team.mint("release", ["tokens-model"], ["alias"])
    releaser.set_alias("tokens-model", "canary", 2)
    assert store.admin.get_version("tokens-model", "canary").version == 2
    with pytest.raises(Forbidden):
        releaser.upload("tokens-model", onnx_model(seed=5))
    pruner = team.mint("prune", ["tokens-model"], ["delete"])
    spare = team.client("train").upload("tokens-model", onnx_model(seed=6)).version
    pruner.delete_version("tokens-model", spare)
    assert spare not in [v.version for v in store.admin.list_versions("tokens-model")]
    with pytest.raises(Forbidden):
        pruner.download("tokens-model")
    releaser.delete_alias("tokens-model", "canary")


def test_a_namespaced_read_token_only_sees_what_its_namespace_may_read(store, team):
    store.admin.upload("unowned-model", onnx_model(seed=7))  # written by the admin: nobody's
    reader = Tenant(store, TEAM).mint("browse", ["*"], ["read"])
    names = {model["name"] for model in reader.list_models()}
    assert "tokens-model" in names and "unowned-model" not in names
    me = reader.whoami()
    assert me["namespace"] == TEAM and me["metadata"] == {"mlfunction": f"{TEAM}/browse"}
