"""/system/logs as `faas-cli logs` reads it, over real sockets: NDJSON logs.Message lines from the replicas' log
files, `tail`, `since`, and `follow` that streams new lines and ends when the client disconnects."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests
from local_support import deploy
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server


def _print(gw, text: str) -> None:
    answer = requests.get(gw.url + "/function/echo/print", params={"text": text}, timeout=30)
    assert answer.status_code == 200


def _logs(gw, **params) -> list[dict]:
    answer = requests.get(gw.url + "/system/logs", params={"name": "echo", **params}, auth=gw.basic_auth,
                          timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


def test_logs_are_logs_messages_of_each_replica(gateway):
    assert deploy(gateway, "echo").status_code == 202
    for text in ("first line", "second line", "third line"):
        _print(gateway, text)
    messages = _logs(gateway, tail="-1")
    texts = [m["text"] for m in messages]
    assert texts[-3:] == ["first line", "second line", "third line"]
    for message in messages:
        assert set(message) == {"name", "namespace", "instance", "timestamp", "text"}
        assert (message["name"], message["namespace"]) == ("echo", "openfaas-fn")
        assert message["instance"].startswith("echo-")
        stamp = datetime.fromisoformat(message["timestamp"])
        assert stamp.tzinfo is not None and abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=1)

    assert [m["text"] for m in _logs(gateway, tail="2")] == ["second line", "third line"]
    instance = messages[-1]["instance"]
    assert {m["instance"] for m in _logs(gateway, instance=instance)} == {instance}
    assert _logs(gateway, instance="echo-0") == []
    assert _logs(gateway, tail="0") == []
    future = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    assert _logs(gateway, since=future) == []
    past = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert [m["text"] for m in _logs(gateway, since=past)][-1] == "third line"


def test_follow_streams_new_lines_and_ends_when_the_client_disconnects(gateway):
    assert deploy(gateway, "echo").status_code == 202
    _print(gateway, "before following")
    stream = requests.get(gateway.url + "/system/logs", params={"name": "echo", "follow": "true", "tail": "1"},
                          auth=gateway.basic_auth, stream=True, timeout=30)
    assert stream.status_code == 200
    lines = stream.iter_lines()
    assert json.loads(next(lines))["text"] == "before following"
    printer = threading.Thread(target=_print, args=(gateway, "while following"))
    printer.start()
    followed = json.loads(next(lines))  # blocks until the gateway streams it (the read timeout is the deadline)
    printer.join()
    assert (followed["text"], followed["name"]) == ("while following", "echo")
    stream.close()
    wait_for(lambda: '"reason": "client disconnected"' in gateway.log_path.read_text(),
             what="the gateway to end the follow once the client went away")


@pytest.mark.parametrize("params, status, expected", [
    ({}, 400, "name="),
    ({"name": "echo", "tail": "many"}, 400, "tail"),
    ({"name": "echo", "since": "yesterday"}, 400, "RFC 3339"),
    ({"name": "nobody"}, 404, "nobody"),
    ({"name": "echo", "namespace": "../.."}, 400, "invalid namespace"),
])
def test_bad_log_requests(gateway, params, status, expected):
    assert deploy(gateway, "echo").status_code == 202
    answer = requests.get(gateway.url + "/system/logs", params=params, auth=gateway.basic_auth, timeout=10)
    assert answer.status_code == status
    assert expected in answer.json()["message"]


def test_logs_and_info_need_basic_auth(gateway):
    for path in ("/system/logs?name=echo", "/system/info"):
        assert requests.get(gateway.url + path, timeout=10).status_code == 401


def test_info_in_faas_providers_shape(gateway):
    info = requests.get(gateway.url + "/system/info", auth=gateway.basic_auth, timeout=10).json()
    assert set(info) == {"provider", "version", "arch"}
    assert info["provider"]["provider"] == "local-openfaas"
    assert info["provider"]["orchestration"] == "local-processes"  # standalone; "kubernetes" when bound
    assert info["provider"]["version"]["release"] == info["version"]["release"]
    assert info["version"]["release"][0].isdigit()
    assert set(info["version"]) == {"release", "sha", "commit_message"}
    assert info["arch"]
