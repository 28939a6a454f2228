"""The gateway's bounds on a request before it works on it (gateway/http_limits.py), over real sockets against a
real gateway process started with small limits so the tests stay fast."""

from __future__ import annotations

import base64
import json
import select
import socket
import time

import pytest
from local_openfaas.gateway import process as gateway_process
from mlfunctions_harness.processes import free_port

MAX_HEADER_BYTES = 4096
MAX_LINE_BYTES = 1024
HEADER_TIMEOUT = 1.0
MAX_CONCURRENT = 2


@pytest.fixture(scope="module")
def limited_gateway(tmp_path_factory):
    gw = gateway_process.start(free_port(), tmp_path_factory.mktemp("limits") / "gw", extra_args=[
        "--max-header-bytes", str(MAX_HEADER_BYTES), "--max-header-line-bytes", str(MAX_LINE_BYTES),
        "--header-timeout", str(HEADER_TIMEOUT), "--max-concurrent-requests", str(MAX_CONCURRENT)])
    try:
        yield gw
    finally:
        gw.stop()


def _connect(gw) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_response(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body (by Content-Length, else until close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "-1"))
    while len(body) < length or length < 0:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _request(gw, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    with _connect(gw) as sock:
        sock.sendall(head.encode() + body)
        return _read_response(sock, time.monotonic() + timeout)


def _auth(gw) -> str:
    return "Basic " + base64.b64encode(f"{gw.basic_auth[0]}:{gw.basic_auth[1]}".encode()).decode()


def test_a_header_block_over_the_limit_is_answered_431_in_json(limited_gateway):
    headers = "".join(f"X-Filler-{i}: {'a' * 900}\r\n" for i in range(6))  # each line fits, the total does not
    status, response_headers, body = _request(limited_gateway, f"GET /healthz HTTP/1.1\r\nHost: gw\r\n{headers}\r\n")
    assert status == 431
    assert response_headers["content-type"].startswith("application/json")
    assert str(MAX_HEADER_BYTES) in json.loads(body)["message"]


def test_a_header_block_streamed_past_the_limit_is_refused_before_it_ends(limited_gateway):
    with _connect(limited_gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n")
        deadline = time.monotonic() + 5
        for i in range(MAX_HEADER_BYTES // 500 + 2):  # the head never ends: only the byte count can refuse it
            sock.sendall(f"X-Filler-{i}: {'a' * 480}\r\n".encode())
        status, _, body = _read_response(sock, deadline)
    assert status == 431
    assert str(MAX_HEADER_BYTES) in json.loads(body)["message"]


def test_a_header_line_over_the_line_limit_is_answered_431_in_json(limited_gateway):
    status, _, body = _request(limited_gateway,
                               f"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Long: {'b' * (MAX_LINE_BYTES + 10)}\r\n\r\n")
    assert status == 431
    assert str(MAX_LINE_BYTES) in json.loads(body)["message"]


def test_a_slow_head_is_answered_408_while_others_are_served(limited_gateway):
    with _connect(limited_gateway) as slow:
        started = time.monotonic()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n")
        answered = False
        while time.monotonic() - started < HEADER_TIMEOUT + 3:  # the drip is bounded; the refusal ends it sooner
            if select.select([slow], [], [], 0.2)[0]:
                answered = True
                break
            try:
                slow.sendall(b"X-Drip: 1\r\n")
            except OSError:
                break
            assert _request(limited_gateway, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n", timeout=2)[0] == 200
        assert answered, "the slow client was never answered"
        status, headers, body = _read_response(slow, time.monotonic() + 2)
        elapsed = time.monotonic() - started
    assert status == 408
    assert headers["content-type"] == "application/json"
    assert f"{HEADER_TIMEOUT:g}s" in json.loads(body)["message"]
    assert HEADER_TIMEOUT - 0.1 <= elapsed <= HEADER_TIMEOUT + 1.5


def test_requests_beyond_the_concurrency_cap_get_503_with_retry_after(limited_gateway):
    auth = _auth(limited_gateway)
    info = f"GET /system/info HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n\r\n"
    slow = []
    try:
        for _ in range(MAX_CONCURRENT):  # deploy requests whose bodies never finish: their handlers stay in flight
            sock = _connect(limited_gateway)
            sock.sendall(f"POST /system/functions HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"service\"".encode())
            slow.append(sock)
        deadline = time.monotonic() + 10
        while (answer := _request(limited_gateway, info, timeout=5))[0] != 503:
            assert answer[0] == 200
            assert time.monotonic() < deadline, "the cap never refused a request"
            time.sleep(0.05)
        _, headers, body = answer
        assert headers["retry-after"] == "1"
        assert str(MAX_CONCURRENT) in json.loads(body)["message"]
        assert _request(limited_gateway, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")[0] == 200
    finally:
        for sock in slow:
            sock.close()
    deadline = time.monotonic() + 10
    while _request(limited_gateway, info)[0] != 200:  # the slots come back once those clients are gone
        assert time.monotonic() < deadline, "the in-flight count never came down"
        time.sleep(0.05)


def test_normal_requests_are_unaffected(limited_gateway):
    auth = _auth(limited_gateway)
    filler = "".join(f"X-Filler-{i}: {'c' * 500}\r\n" for i in range(5))  # under both limits
    with _connect(limited_gateway) as sock:  # two requests on one kept-alive connection
        for _ in range(2):
            sock.sendall(f"GET /system/info HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n{filler}\r\n".encode())
            status, _, body = _read_response(sock, time.monotonic() + 5)
            assert status == 200
            assert "provider" in json.loads(body)
