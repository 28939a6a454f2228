"""The gateway's proxy path over real sockets: what reaches the function is what the caller sent (encoded paths,
large and chunked bodies, repeated headers), and what comes back is the function's answer."""

from __future__ import annotations

import http.client
import json

import pytest
import requests
from local_support import deploy

pytestmark = pytest.mark.server


@pytest.fixture
def echo(gateway):
    assert deploy(gateway, "echo").status_code == 202
    assert requests.get(gateway.url + "/function/echo", timeout=30).status_code == 200
    return gateway


def _raw(gateway, method: str, target: str, body: bytes | None = None, headers: dict | None = None):
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(method, target, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


def test_the_path_arrives_still_encoded(echo):
    _, body = _raw(echo, "GET", "/function/echo/a%2Fb/c%20d?q=x%26y&r=1")
    echoed = json.loads(body)
    assert echoed["rawPath"] == "/a%2Fb/c%20d?q=x%26y&r=1"


def test_large_and_chunked_bodies_arrive_whole(echo):
    big = b"x" * (3 * 1024 * 1024)
    assert requests.post(echo.url + "/function/echo", data=big, timeout=30).json()["bodyLength"] == len(big)

    def chunks():
        for _ in range(10):
            yield b"0123456789" * 1000

    chunked = requests.post(echo.url + "/function/echo", data=chunks(), timeout=30)  # Transfer-Encoding: chunked
    assert chunked.json()["bodyLength"] == 100_000


def test_repeated_response_headers_and_head_requests(echo):
    cookies = requests.get(echo.url + "/function/echo/cookies", timeout=30)
    assert cookies.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    response, body = _raw(echo, "HEAD", "/function/echo/anything")
    assert response.status == 200 and body == b""
    # The connection to the replica is still usable after a HEAD.
    assert requests.get(echo.url + "/function/echo/after-head", timeout=30).json()["path"] == "/after-head"


def test_many_requests_on_kept_alive_connections(echo):
    session = requests.Session()
    bodies = {session.post(echo.url + f"/function/echo/{i}", data=str(i), timeout=30).json()["body"]
              for i in range(200)}
    assert bodies == {str(i) for i in range(200)}


def test_a_body_over_the_limit_is_413_with_a_message(echo):
    from local_openfaas.gateway.app import MAX_BODY

    response = requests.post(echo.url + "/function/echo", data=b"x" * (MAX_BODY + 1), timeout=60)
    assert response.status_code == 413
    assert str(MAX_BODY) in response.json()["message"]
