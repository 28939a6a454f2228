"""/system/secrets as `faas-cli secret` calls it, on a standalone gateway over real sockets: create, list (names
only, never values), update, delete, 409/404/400, and a function that names a secret reading it from its
OPENFAAS_SECRETS_DIR."""

from __future__ import annotations

import base64
import stat

import pytest
import requests
from local_support import deploy

pytestmark = pytest.mark.server


def _secrets(gw, method: str, body: dict | None = None, **params) -> requests.Response:
    return requests.request(method, gw.url + "/system/secrets", json=body, params=params, auth=gw.basic_auth,
                            timeout=10)


def test_secrets_crud_never_reads_values_back(gateway):
    assert _secrets(gateway, "POST", {"name": "api-key", "value": "first-value"}).status_code == 202
    again = _secrets(gateway, "POST", {"name": "api-key", "value": "other"})
    assert again.status_code == 409 and "PUT" in again.json()["message"]
    raw = "line one\nünïcode ✓\n".encode()  # rawValue: what faas-cli sends for --from-file
    assert _secrets(gateway, "POST", {"name": "blob", "rawValue": base64.b64encode(raw).decode(),
                                      "namespace": "openfaas-fn"}).status_code == 202

    listed = _secrets(gateway, "GET")
    assert listed.status_code == 200
    assert listed.json() == [{"name": "api-key", "namespace": "openfaas-fn"},
                             {"name": "blob", "namespace": "openfaas-fn"}]
    assert "first-value" not in listed.text
    assert _secrets(gateway, "GET", namespace="elsewhere").json() == []
    assert _secrets(gateway, "GET", namespace="../..").status_code == 400  # never a folder outside the store

    stored = gateway.state_dir / "secrets" / "openfaas-fn" / "api-key"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert _secrets(gateway, "PUT", {"name": "api-key", "value": "second-value"}).status_code == 202
    assert _secrets(gateway, "PUT", {"name": "nobody", "value": "x"}).status_code == 404

    # A function that names the secrets reads them as files, as under /var/openfaas/secrets.
    assert deploy(gateway, "echo", secrets=["api-key", "blob"]).status_code == 202
    echoed = requests.get(gateway.url + "/function/echo", timeout=30).json()
    assert echoed["secrets"] == {"api-key": "second-value", "blob": raw.decode()}

    assert _secrets(gateway, "DELETE", {"name": "api-key"}).status_code == 202
    assert _secrets(gateway, "DELETE", {"name": "api-key"}).status_code == 404
    assert [s["name"] for s in _secrets(gateway, "GET").json()] == ["blob"]
    assert not stored.exists()


def test_a_function_naming_a_missing_secret_does_not_start_and_says_why(gateway):
    assert deploy(gateway, "echo", secrets=["missing"]).status_code == 202
    answer = requests.get(gateway.url + "/function/echo", timeout=30)
    assert answer.status_code == 503
    assert "secret missing not found" in answer.json()["message"]


@pytest.mark.parametrize("method, body, expected", [
    ("POST", {"name": "../escape", "value": "x"}, "invalid secret name"),
    ("POST", {"name": "ok", "value": "x", "namespace": "Bad_NS"}, "invalid namespace"),
    ("POST", {"name": "ok"}, "has no value"),
    ("POST", {"name": "ok", "rawValue": "not base64!"}, "base64"),
    ("POST", {"value": "x"}, "expected a JSON secret"),
    ("DELETE", None, "expected a JSON secret"),
])
def test_bad_secret_requests_are_400(gateway, method, body, expected):
    answer = _secrets(gateway, method, body)
    assert answer.status_code == 400
    assert expected in answer.json()["message"]
    assert not list((gateway.state_dir / "secrets").glob("**/escape"))


def test_secrets_need_basic_auth(gateway):
    for method in ("GET", "POST", "PUT", "DELETE"):
        answer = requests.request(method, gateway.url + "/system/secrets", json={"name": "x", "value": "y"},
                                  timeout=10)
        assert answer.status_code == 401
    assert not (gateway.state_dir / "secrets" / "openfaas-fn" / "x").exists()
