"""The gateway over real sockets, with real function processes: the OpenFaaS /system API as faas-cli calls it,
invocation through /function/<name>, scaling (to zero, from zero, on rps), restarts, and clean shutdown."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests
from local_support import deploy, describe, invocations, metrics
from mlfunctions_harness.processes import pid_alive, wait_for

pytestmark = pytest.mark.server


def test_system_api_needs_basic_auth_but_functions_and_healthz_do_not(gateway):
    anonymous = requests.get(gateway.url + "/system/functions", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert "basic auth" in anonymous.json()["message"]
    wrong = requests.get(gateway.url + "/system/functions", auth=("admin", "wrong"), timeout=5)
    assert wrong.status_code == 401
    assert requests.get(gateway.url + "/system/functions", auth=gateway.basic_auth, timeout=5).json() == []
    assert requests.get(gateway.url + "/healthz", timeout=5).text == "OK"
    assert deploy(gateway, "echo").status_code == 202
    assert requests.get(gateway.url + "/function/echo", timeout=30).status_code == 200


def test_faas_cli_lifecycle_deploy_invoke_update_scale_delete(gateway):
    assert deploy(gateway, "echo", env={"ECHO_COLOUR": "blue"}).status_code == 202
    again = deploy(gateway, "echo")
    assert again.status_code == 409 and "PUT" in again.json()["message"]

    answer = requests.post(gateway.url + "/function/echo/some/path?x=1&y=two", data=b"payload",
                           headers={"X-Custom": "kept"}, timeout=30)
    assert answer.status_code == 200, answer.text
    echoed = answer.json()
    assert (echoed["method"], echoed["path"], echoed["query"], echoed["body"]) == (
        "POST", "/some/path", "x=1&y=two", "payload")
    assert echoed["env"] == {"ECHO_COLOUR": "blue"}
    assert echoed["forwardedHost"] == gateway.url.removeprefix("http://")
    assert float(answer.headers["X-Duration-Seconds"]) > 0
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert requests.request(method, gateway.url + "/function/echo", timeout=30).json()["method"] == method

    listed = requests.get(gateway.url + "/system/functions", auth=gateway.basic_auth, timeout=5).json()
    assert [f["name"] for f in listed] == ["echo"]
    assert listed[0]["invocationCount"] >= 5 and listed[0]["availableReplicas"] == 1
    assert listed[0]["namespace"] == "openfaas-fn"
    counted = metrics(gateway)  # /metrics counts what /system reports
    assert invocations(gateway, "echo.openfaas-fn") == listed[0]["invocationCount"]
    assert counted['gateway_service_count{function_name="echo.openfaas-fn"}'] == 1

    # faas-cli deploy updates with PUT: the replica is replaced by one with the new environment.
    old_pid = echoed["pid"]
    assert deploy(gateway, "echo", env={"ECHO_COLOUR": "green"}, method="PUT").status_code == 202
    wait_for(lambda: requests.get(gateway.url + "/function/echo", timeout=30).json()["env"].get("ECHO_COLOUR")
             == "green", what="the updated environment to be served")
    wait_for(lambda: not pid_alive(old_pid), what="the outdated replica to stop")

    # A new minimum in the labels scales at once, without a restart (labels only steer scaling).
    assert deploy(gateway, "echo", env={"ECHO_COLOUR": "green"}, labels={"com.openfaas.scale.min": "2"},
                  method="PUT").status_code == 202
    wait_for(lambda: describe(gateway, "echo")["availableReplicas"] == 2, what="2 replicas")
    pids = {requests.get(gateway.url + "/function/echo", timeout=30).json()["pid"] for _ in range(6)}
    assert len(pids) == 2, "requests are spread over both replicas"

    deleted = requests.delete(gateway.url + "/system/functions", json={"functionName": "echo"},
                              auth=gateway.basic_auth, timeout=30)
    assert deleted.status_code == 202
    gone = requests.get(gateway.url + "/function/echo", timeout=5)
    assert gone.status_code == 404 and "echo" in gone.json()["message"]
    assert not any(pid_alive(pid) for pid in pids)
    assert requests.delete(gateway.url + "/system/functions", json={"functionName": "echo"},
                           auth=gateway.basic_auth, timeout=5).status_code == 404


@pytest.mark.parametrize("method, path, body, expected", [
    ("POST", "/system/functions", b"not json", "FunctionDeployment"),
    ("POST", "/system/functions", b'{"service": "Bad_Name", "image": "x"}', "DNS-1123"),
    ("POST", "/system/functions", b'{"service": "ok"}', "image"),
    ("POST", "/system/functions", b'{"service": "ok", "image": "x", "labels": {"com.openfaas.scale.max": "-3"}}',
     "com.openfaas.scale.max"),
    ("DELETE", "/system/functions", b'{"name": "x"}', "functionName"),
    ("POST", "/system/scale-function/x", b'{"replicas": -1}', "replicas"),
])
def test_bad_requests_get_400_saying_what_was_expected(gateway, method, path, body, expected):
    response = requests.request(method, gateway.url + path, data=body, auth=gateway.basic_auth, timeout=5)
    assert response.status_code == 400
    assert expected in response.json()["message"]


def test_unknown_functions_are_404(gateway):
    for path in ("/function/nope", "/function/nope/sub"):
        response = requests.get(gateway.url + path, timeout=5)
        assert response.status_code == 404 and "nope" in response.json()["message"]
    assert requests.get(gateway.url + "/system/function/nope", auth=gateway.basic_auth, timeout=5).status_code == 404
    assert requests.put(gateway.url + "/system/functions", json={"service": "nope", "image": "x"},
                        auth=gateway.basic_auth, timeout=5).status_code == 404
    assert requests.post(gateway.url + "/system/scale-function/nope", json={"replicas": 1},
                         auth=gateway.basic_auth, timeout=5).status_code == 404


def test_scale_to_zero_when_idle_then_a_request_is_held_through_a_warm_start(gateway):
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "1s"}
    assert deploy(gateway, "echo", labels=labels).status_code == 202
    first = requests.get(gateway.url + "/function/echo", timeout=30).json()
    wait_for(lambda: "warm process ready" in gateway.log_path.read_text(), what="a pre-warmed process")
    wait_for(lambda: describe(gateway, "echo")["replicas"] == 0, what="scale to zero")
    assert describe(gateway, "echo")["availableReplicas"] == 0
    wait_for(lambda: not pid_alive(first["pid"]), what="the idle replica to exit (it drains on SIGTERM)")

    answer = requests.get(gateway.url + "/function/echo/after-idle", timeout=30)
    assert answer.status_code == 200  # the caller sees only a slower answer
    woken = answer.json()
    assert woken["path"] == "/after-idle" and woken["pid"] != first["pid"]
    assert "aiohttp" in woken["modules"], "the replica came from the pre-warmed pool (aiohttp preloaded)"
    assert describe(gateway, "echo")["availableReplicas"] == 1


def test_slow_start_holds_concurrent_requests_until_ready(gateway):
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "1s"}
    assert deploy(gateway, "slow", env={"STARTUP_DELAY": "1.5"}, labels=labels).status_code == 202
    wait_for(lambda: describe(gateway, "slow")["replicas"] == 0, what="scale to zero")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: requests.get(f"{gateway.url}/function/slow/{i}", timeout=30), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert time.monotonic() - started >= 1.5  # they really waited for the start
    assert len({a.json()["pid"] for a in answers}) == 1


def test_manual_scale_to_zero_and_back(gateway):
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "10m"}
    assert deploy(gateway, "echo", labels=labels).status_code == 202
    pid = requests.get(gateway.url + "/function/echo", timeout=30).json()["pid"]
    scaled = requests.post(gateway.url + "/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0},
                           auth=gateway.basic_auth, timeout=5)
    assert scaled.status_code == 202
    wait_for(lambda: not pid_alive(pid), what="the replica to stop")
    # The recent traffic does not bring it back by itself: three autoscaler rounds later, no replica was started.
    before = metrics(gateway)
    wait_for(lambda: metrics(gateway)["local_openfaas_autoscaler_passes_total"]
             >= before["local_openfaas_autoscaler_passes_total"] + 3, what="three autoscaler rounds")
    after = metrics(gateway)
    starts = 'local_openfaas_replica_starts_total{function_name="echo.openfaas-fn"}'
    assert after[starts] == before[starts] == 1
    assert describe(gateway, "echo")["replicas"] == 0
    assert requests.get(gateway.url + "/function/echo", timeout=30).status_code == 200


def test_a_crashed_replica_is_restarted(gateway):
    assert deploy(gateway, "echo").status_code == 202
    before = requests.get(gateway.url + "/function/echo", timeout=30).json()["pid"]
    crashed = requests.get(gateway.url + "/function/echo/crash", timeout=30)
    assert crashed.status_code == 502 and "echo" in crashed.json()["message"]
    after = wait_for(lambda: _pid_if_ok(gateway.url + "/function/echo"), what="a restarted replica")
    assert after != before


def _pid_if_ok(url: str):
    response = requests.get(url, timeout=30)
    return response.json()["pid"] if response.status_code == 200 else None


def test_a_function_that_cannot_start_answers_503_with_the_reason(gateway):
    assert deploy(gateway, "broken", env={"STARTUP_DELAY": "not-a-number"}).status_code == 202
    response = requests.get(gateway.url + "/function/broken", timeout=60)
    assert response.status_code == 503
    assert "exited with code 1" in response.json()["message"]
    assert describe(gateway, "broken")["availableReplicas"] == 0


def test_unknown_image_is_accepted_then_reported_like_an_image_pull_error(gateway):
    response = requests.post(gateway.url + "/system/functions", json={"service": "ghost", "image": "nowhere:1"},
                             auth=gateway.basic_auth, timeout=5)
    assert response.status_code == 202
    call = requests.get(gateway.url + "/function/ghost", timeout=5)
    assert call.status_code == 503 and "nowhere:1" in call.json()["message"]


def test_rps_above_target_adds_replicas_up_to_max(gateway):
    labels = {"com.openfaas.scale.target": "2", "com.openfaas.scale.target-proportion": "1.0",
              "com.openfaas.scale.max": "3", "com.openfaas.scale.type": "rps"}
    assert deploy(gateway, "busy", labels=labels).status_code == 202
    wait_for(lambda: describe(gateway, "busy")["availableReplicas"] == 1, what="first replica")
    session = requests.Session()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and describe(gateway, "busy")["replicas"] < 3:
        for _ in range(20):
            assert session.get(gateway.url + "/function/busy", timeout=30).status_code == 200
    assert describe(gateway, "busy")["replicas"] == 3  # 10-second rps well above 3 x 2 -> capped at max
    wait_for(lambda: describe(gateway, "busy")["availableReplicas"] == 3, what="3 ready replicas")
