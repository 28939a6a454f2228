"""Requests built to cost the store: oversized and trickled headers, connection and request floods, deeply
nested and oversized JSON. Each gets a clean JSON refusal (431, 408, 503, 400, 413), never a 500, while health
checks and other clients keep being answered."""

from __future__ import annotations

import json
import select
import time

import pytest
import requests

from mlfunctions_harness.model_store import onnx_model
from mlfunctions_harness.processes import wait_for
from tenancy_payloads import connect, read_response

pytestmark = pytest.mark.server

HEADER_TIMEOUT = 1.5


def _json_refusal(status: int, headers: dict, body: bytes, expected: int, code: str) -> dict:
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == code and answer["message"]
    return answer


def _healthy(store) -> bool:
    return requests.get(f"{store.url}/healthz", timeout=5).status_code == 200


def test_headers_larger_than_the_limit_are_refused_with_431(store):
    with connect(store.port) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (64 << 10) + b"\r\n\r\n")
        answer = _json_refusal(*read_response(sock), 431, "headers_too_large")
    assert str(32 << 10) in answer["message"]
    assert _healthy(store)


def test_metadata_as_large_as_the_api_allows_still_fits_in_the_headers(store):
    metadata = {"notes": "m" * ((16 << 10) - 100)}
    version = store.admin.upload("big-metadata", onnx_model(seed=1), metadata=metadata)
    assert version.metadata["notes"] == metadata["notes"]


def _trickle(sock, first: bytes, deadline: float) -> tuple[int, dict, bytes]:
    """Send `first`, then one more header byte every 0.2 s, until the server answers (or the deadline)."""
    sock.sendall(first)
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            return read_response(sock)
        sock.sendall(b"a")
    raise AssertionError("the server kept reading a trickled header past the deadline")


def test_a_trickled_request_head_is_cut_off_with_408(store_with):
    store = store_with(header_timeout_seconds=HEADER_TIMEOUT)
    with connect(store.port) as sock:
        started = time.monotonic()
        status, headers, body = _trickle(
            sock, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ", started + 30
        )
        took = time.monotonic() - started
        answer = _json_refusal(status, headers, body, 408, "request_timeout")
        assert sock.recv(1) == b""  # and the connection is closed
    assert HEADER_TIMEOUT - 0.1 < took < HEADER_TIMEOUT + 3, took
    assert f"{HEADER_TIMEOUT:g}s" in answer["message"]
    assert _healthy(store)


def test_a_connection_that_never_sends_is_closed_with_408(store_with):
    store = store_with(header_timeout_seconds=HEADER_TIMEOUT)
    with connect(store.port) as sock:
        _json_refusal(*read_response(sock), 408, "request_timeout")


def test_connections_beyond_the_limit_get_503_but_health_checks_pass(store_with):
    store = store_with(max_connections=3)
    held = [connect(store.port) for _ in range(3)]
    try:
        with connect(store.port) as extra:
            extra.sendall(
                f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {store.admin_token}"
                "\r\n\r\n".encode()
            )
            status, headers, body = read_response(extra)
            _json_refusal(status, headers, body, 503, "unavailable")
            assert headers["retry-after"] == "1"
        with connect(store.port) as probe:
            probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(probe)[0] == 200
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: store.admin.list_models() == [], 10, "requests to be served once the flood is gone")


def _start_upload(store, model: str):
    """An upload whose body never finishes: it holds a request slot until the socket closes."""
    sock = connect(store.port)
    sock.sendall(
        f"POST /v1/models/{model}/versions?format=onnx HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {store.admin_token}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 100000\r\n\r\n".encode()
        + b"\0" * 10
    )
    return sock


def test_requests_beyond_the_concurrency_limit_get_503_but_health_checks_pass(store_with):
    store = store_with(max_concurrent_requests=2)
    slow = [_start_upload(store, "slow") for _ in range(2)]
    try:
        wait_for(lambda: len(store.staged()) == 2, 10, "both slow uploads to be in flight")
        refused = requests.get(
            f"{store.url}/v1/models", headers={"Authorization": f"Bearer {store.admin_token}"}, timeout=5
        )
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json()["error"] == "unavailable" and "2 requests" in refused.json()["message"]
        assert _healthy(store)
        assert requests.get(f"{store.url}/readyz", timeout=5).status_code == 200
    finally:
        for sock in slow:
            sock.close()
    wait_for(lambda: store.admin.list_models() == [], 10, "requests to be served once the slow ones are gone")
    assert store.staged() == []  # the abandoned uploads left nothing behind


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/v1/tokens", "[" * 60_000),
        ("POST", "/v1/tokens", '{"models": ' + "[" * 40 + "]" * 40 + ', "rights": ["read"]}'),
        ("PUT", "/v1/models/nested/aliases/production", '{"version": ' + '{"a": ' * 33 + "1" + "}" * 34),
        ("PUT", "/v1/models/nested/owner", '{"namespace": "' + "[" * 1000 + '"' + "," + "[" * 50),
    ],
    ids=["unclosed-arrays", "nested-arrays", "nested-objects", "brackets-after-a-string"],
)
def test_deeply_nested_json_is_a_400_never_a_500(store, method, path, body):
    answer = requests.request(
        method,
        f"{store.url}{path}",
        data=body,
        timeout=10,
        headers={"Authorization": f"Bearer {store.admin_token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_request" and "levels deep" in answer.json()["message"]


def test_nesting_within_the_limit_reaches_validation(store):
    answer = requests.post(
        f"{store.url}/v1/tokens",
        json={"models": [[[["iris"]]]], "rights": ["read"]},
        timeout=10,
        headers={"Authorization": f"Bearer {store.admin_token}"},
    )
    assert answer.status_code == 422  # refused by the schema, as before: the depth limit is not in the way


def test_deeply_nested_metadata_is_a_400(store):
    answer = requests.post(
        f"{store.url}/v1/models/nested-metadata/versions",
        data=onnx_model(seed=2),
        timeout=10,
        headers={
            "Authorization": f"Bearer {store.admin_token}",
            "Content-Type": "application/octet-stream",
            "X-Model-Metadata": '{"a": ' + "[" * 2000 + "]" * 2000 + "}",
        },
    )
    assert answer.status_code == 400 and "levels deep" in answer.json()["message"]
    assert store.blobs("nested-metadata") == []


def test_an_unauthenticated_huge_body_is_refused_before_it_is_read(store):
    """FastAPI reads a JSON body before it runs the authentication dependency: the limit comes first."""
    with connect(store.port) as sock:
        sock.sendall(
            b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1073741824\r\n\r\n" + b"[" * 1000
        )
        _json_refusal(*read_response(sock), 413, "too_large")


def test_a_chunked_body_past_the_limit_is_cut_off(store):
    before = store.rss_bytes()

    def chunks():
        for _ in range(64):
            yield b" " * (64 << 10)

    answer = requests.post(
        f"{store.url}/v1/tokens",
        data=chunks(),
        timeout=10,
        headers={"Authorization": f"Bearer {store.admin_token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert store.rss_bytes() - before < 16 << 20
