"""/async-function/<name> as `faas-cli invoke --async` calls it, over real sockets: 202 and X-Call-Id at once, the
call run in the background, its result POSTed to X-Callback-Url (a real local server) with the queue-worker's
headers; callbacks outside loopback refused (SSRF); a full queue answered 429."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time

import pytest
import requests
from callback_server import CallbackServer
from local_support import deploy, invocations, stop_gateway
from mlfunctions_harness.processes import free_port, wait_for
from local_openfaas.gateway import process as gateway_process
from local_openfaas.gateway.async_calls import LOOPBACK, CallbackRefused, check_callback

pytestmark = pytest.mark.server


def test_async_call_is_accepted_at_once_and_its_result_posted_to_the_callback(gateway):
    assert deploy(gateway, "echo").status_code == 202
    with CallbackServer() as callbacks:
        began = time.monotonic()
        accepted = requests.post(gateway.url + "/async-function/echo/sleep?s=1.5&status=201", data=b"hello",
                                 headers={"X-Callback-Url": callbacks.url + "/done?x=1",
                                          "Content-Type": "text/plain"}, timeout=10)  # no auth: public
        answered_in = time.monotonic() - began
        assert accepted.status_code == 202, accepted.text
        assert accepted.content == b""
        call_id = accepted.headers["X-Call-Id"]
        assert len(call_id) >= 32
        assert answered_in < 1.5, f"the 202 waited for the function ({answered_in:.2f}s)"

        received = callbacks.next(timeout=30)
        assert received.path == "/done?x=1"
        assert received.headers["X-Call-Id"] == call_id
        assert received.headers["X-Function-Status"] == "201"
        assert received.headers["X-Function-Name"] == "echo"
        assert float(received.headers["X-Duration-Seconds"]) >= 1.5
        assert received.headers["Content-Type"] == "application/json"
        echoed = json.loads(received.body)
        assert (echoed["method"], echoed["path"], echoed["query"], echoed["body"]) == (
            "POST", "/sleep", "s=1.5&status=201", "hello")
        assert echoed["callId"] == call_id, "the function sees the call's id, as behind the queue-worker"


def test_callers_call_id_is_kept_and_a_call_without_callback_still_runs(gateway):
    assert deploy(gateway, "echo").status_code == 202
    accepted = requests.post(gateway.url + "/async-function/echo/print?text=async-without-callback",
                             headers={"X-Call-Id": "my-own-id"}, timeout=10)
    assert accepted.status_code == 202 and accepted.headers["X-Call-Id"] == "my-own-id"
    odd = requests.post(gateway.url + "/async-function/echo", headers={"X-Call-Id": "x" * 500}, timeout=10)
    assert odd.status_code == 202 and len(odd.headers["X-Call-Id"]) == 36  # not a plain token: a new UUID
    log_dir = gateway.state_dir / "logs" / "openfaas-fn"
    wait_for(lambda: any("async-without-callback" in p.read_text() for p in log_dir.glob("echo-*.log")),
             what="the queued call to run the function")


def test_a_failing_function_status_reaches_the_callback(gateway):
    assert deploy(gateway, "echo").status_code == 202
    with CallbackServer() as callbacks:
        accepted = requests.get(gateway.url + "/async-function/echo?status=500",
                                headers={"X-Callback-Url": callbacks.url}, timeout=10)
        assert accepted.status_code == 202
        received = callbacks.next(timeout=30)
        assert received.headers["X-Function-Status"] == "500"
        assert received.headers["X-Call-Id"] == accepted.headers["X-Call-Id"]


@pytest.mark.parametrize("callback, expected", [
    ("http://10.1.2.3:8080/hook", "outside the networks"),
    ("http://[fd00::1]/hook", "outside the networks"),
    ("ftp://127.0.0.1/hook", "http(s) URL"),
    ("not a url", "http(s) URL"),
    ("http://no-such-host.invalid/hook", "does not resolve"),
])
def test_callbacks_outside_loopback_are_refused(gateway, callback, expected):
    assert deploy(gateway, "echo").status_code == 202
    refused = requests.post(gateway.url + "/async-function/echo", headers={"X-Callback-Url": callback},
                            timeout=10)
    assert refused.status_code == 400
    assert expected in refused.json()["message"]


def test_async_call_to_an_unknown_function_is_404(gateway):
    missing = requests.post(gateway.url + "/async-function/nobody", timeout=10)
    assert missing.status_code == 404 and "nobody" in missing.json()["message"]


def test_the_allowed_networks_can_be_widened():
    documentation = (ipaddress.ip_network("192.0.2.0/24"),)
    asyncio.run(check_callback("http://192.0.2.7/hook", documentation))  # an address literal: no lookup
    with pytest.raises(CallbackRefused):
        asyncio.run(check_callback("http://192.0.2.7/hook", LOOPBACK))
    asyncio.run(check_callback("http://localhost:9/hook", LOOPBACK))


def test_a_full_queue_answers_429_and_the_accepted_calls_all_run(tmp_path, echo_programs):
    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[echo_programs], autoscale_interval=0.2,
                               ready_timeout=10.0, extra_args=["--async-queue-size", "1", "--async-workers", "1"])
    try:
        assert deploy(gw, "echo").status_code == 202
        with CallbackServer() as callbacks:
            accepted, refused = [], None
            for _ in range(10):  # one running, one waiting: the third at the latest finds the queue full
                answer = requests.post(gw.url + "/async-function/echo/sleep?s=1",
                                       headers={"X-Callback-Url": callbacks.url}, timeout=10)
                if answer.status_code == 429:
                    refused = answer
                    break
                assert answer.status_code == 202
                accepted.append(answer.headers["X-Call-Id"])
            assert refused is not None, "the bounded queue never refused a call"
            assert "queue is full" in refused.json()["message"] and refused.headers["Retry-After"]
            assert 1 <= len(accepted) <= 2
            seen = {callbacks.next(timeout=30).headers["X-Call-Id"] for _ in accepted}
            assert seen == set(accepted)
            # Every accepted call ran, and the refused one did not: the function was called exactly that often.
            assert invocations(gw, "echo.openfaas-fn") == len(accepted)
    finally:
        stop_gateway(gw)
