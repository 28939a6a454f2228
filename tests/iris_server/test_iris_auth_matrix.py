"""The auth matrix over real HTTP: admin, each right alone (read, write, delete, alias), all of them, another
model, a glob, revoked, none, garbage and forged tokens. Store-wide tokens (no namespace); tests/tenancy has
the namespaced ones."""

from __future__ import annotations

import json

import pytest
import requests

from iris_client import Forbidden, NotFound, Unauthorized
from iris_samples import onnx_model

pytestmark = pytest.mark.server

MODEL = "authz"
OTHER = "authz-other"


@pytest.fixture(scope="module")
def seeded(iris):
    admin = iris.admin
    admin.upload(MODEL, onnx_model(seed=100))
    admin.upload(OTHER, onnx_model(seed=101))
    tokens = {
        "read": admin.create_token([MODEL], ["read"], "reader"),
        "write": admin.create_token([MODEL], ["write"], "writer"),
        "delete": admin.create_token([MODEL], ["delete"], "pruner"),
        "alias": admin.create_token([MODEL], ["alias"], "releaser"),
        "all": admin.create_token([MODEL], ["read", "write", "delete", "alias"], "maintainer"),
        "readwrite": admin.create_token([MODEL], ["read", "write"], "trainer"),
        "other": admin.create_token([OTHER], ["read", "write"], "other team"),
        "glob": admin.create_token(["authz*"], ["read"], "all authz"),
        "revoked": admin.create_token([MODEL], ["read", "write"], "revoked"),
    }
    admin.revoke_token(tokens["revoked"].id)
    return {name: issued.token for name, issued in tokens.items()}


def _outcome(call) -> str:
    try:
        call()
    except Unauthorized:
        return "401"
    except Forbidden:
        return "403"
    except NotFound:  # authorized, and then the thing was not there
        return "404"
    return "ok"


OPERATIONS = {
    "list_versions": lambda c: c.list_versions(MODEL),
    "get_version": lambda c: c.get_version(MODEL, "latest"),
    "download": lambda c: c.download(MODEL),
    "upload": lambda c: c.upload(MODEL, onnx_model(seed=200)),
    "delete_version": lambda c: c.delete_version(MODEL, 999_999),  # authorized: 404, and nothing is lost
    "set_alias": lambda c: c.set_alias(MODEL, "production", 1),
    "list_tokens": lambda c: c.list_tokens(),
}
READS = ("list_versions", "get_version", "download")


def _only(*allowed: str) -> dict[str, str]:
    return {op: ("404" if op == "delete_version" else "ok") if op in allowed else "403" for op in OPERATIONS}


# caller -> operation -> expected outcome
EXPECTED = {
    "admin": _only(*OPERATIONS),
    "read": _only(*READS),
    "write": _only("upload"),  # write no longer implies deleting versions or moving aliases
    "delete": _only("delete_version"),
    "alias": _only("set_alias"),
    "all": _only(*READS, "upload", "delete_version", "set_alias"),
    "readwrite": _only(*READS, "upload"),
    "other": _only(),
    "glob": _only(*READS),
    "revoked": dict.fromkeys(OPERATIONS, "401"),
    "none": dict.fromkeys(OPERATIONS, "401"),
    "garbage": dict.fromkeys(OPERATIONS, "401"),
    "forged": dict.fromkeys(OPERATIONS, "401"),
}


@pytest.mark.parametrize("caller", list(EXPECTED))
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_auth_matrix(iris, seeded, caller, operation):
    if caller == "admin":
        token = iris.admin_token
    elif caller == "none":
        token = ""
    elif caller == "garbage":
        token = "not-a-token"
    elif caller == "forged":  # a real token id with a made-up secret
        token = seeded["read"].rsplit("_", 1)[0] + "_" + "A" * 43
    else:
        token = seeded[caller]
    client = iris.client(token, retries=0)
    assert _outcome(lambda: OPERATIONS[operation](client)) == EXPECTED[caller][operation]


def test_errors_are_json_with_a_message_and_a_challenge(iris, seeded):
    unauthenticated = requests.get(f"{iris.url}/v1/models/{MODEL}/versions")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "unauthorized" and "Bearer" in unauthenticated.json()["message"]
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    wrong_scheme = requests.get(
        f"{iris.url}/v1/models", headers={"Authorization": f"Basic {iris.admin_token}"}
    )
    assert wrong_scheme.status_code == 401
    forbidden = requests.get(
        f"{iris.url}/v1/models/{OTHER}/versions", headers={"Authorization": f"Bearer {seeded['read']}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "error": "forbidden",
        "message": f"token {seeded['read'].split('_')[1]} has no read right on model '{OTHER}'",
    }


def test_listing_shows_only_models_in_scope(iris, seeded):
    names = {m["name"] for m in iris.client(seeded["read"]).list_models()}
    assert MODEL in names and OTHER not in names
    assert {MODEL, OTHER} <= {m["name"] for m in iris.client(seeded["glob"]).list_models()}


def test_out_of_scope_does_not_reveal_whether_a_model_exists(iris, seeded):
    reader = iris.client(seeded["read"], retries=0)
    with pytest.raises(Forbidden):
        reader.get_version("no-such-model")
    with pytest.raises(NotFound):
        iris.admin.get_version("no-such-model")


def test_revocation_applies_to_the_next_request(iris):
    issued = iris.admin.create_token([MODEL], ["read"], "short-lived")
    client = iris.client(issued.token, retries=0)
    assert client.get_version(MODEL).model == MODEL
    iris.admin.revoke_token(issued.id)
    with pytest.raises(Unauthorized):
        client.get_version(MODEL)
    listed = {t["id"]: t for t in iris.admin.list_tokens()}
    assert listed[issued.id]["revoked"] is True
    assert "token" not in listed[issued.id] and all("secret" not in key for key in listed[issued.id])


def test_whoami_and_uploader_name_the_token_never_the_secret(iris, seeded):
    writer = iris.client(seeded["readwrite"])
    version = writer.upload(MODEL, onnx_model(seed=150))
    me = requests.get(
        f"{iris.url}/v1/whoami", headers={"Authorization": f"Bearer {seeded['readwrite']}"}
    ).json()
    assert me["admin"] is False and me["models"] == [MODEL] and me["rights"] == ["read", "write"]
    assert me["namespace"] is None and me["metadata"] == {}
    assert version.uploader == f"{me['id']} (trainer)"
    assert version.written_by == {
        "token_id": me["id"],
        "namespace": None,
        "description": "trainer",
        "metadata": {},
    }
    assert seeded["readwrite"].split("_", 2)[2] not in json.dumps(version.written_by) + version.uploader


def test_no_secret_ever_reaches_the_log(iris, seeded):
    log = iris.log_path.read_text()
    assert iris.admin_token not in log
    for token in seeded.values():
        assert token.split("_", 2)[2] not in log
    assert '"token_id": "admin"' in log  # the access log does name the caller
