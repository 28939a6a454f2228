"""OpenFaaS's workload contract, served by the template's index.py itself (there is no watchdog): the lock file
exists exactly while the function serves, and SIGTERM lets a request in flight finish before the process ends.
The functions run as real processes with their own temporary directory, as the image's /tmp."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from function_harness import PREDICT_DIR, TRAIN_DIR, function_env

pytestmark = pytest.mark.server

STOP_TIMEOUT_SECONDS = 30.0


def test_lock_file_exists_while_serving_and_goes_on_sigterm(model_store, run_function, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    reader = model_store.token(["iris"], ["read"])
    function = run_function(PREDICT_DIR, function_env(model_store, reader.token, TMPDIR=str(tmp)))
    assert (tmp / ".lock").is_file()
    assert requests.get(f"{function.url}/_/health", timeout=5).status_code == 200

    function.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after its graceful shutdown, so the process ends "by SIGTERM".
    assert function.process.wait(STOP_TIMEOUT_SECONDS) in (0, -signal.SIGTERM)
    assert not (tmp / ".lock").exists()


def test_sigterm_lets_the_training_in_flight_finish(model_store, run_function, tmp_path):
    writer = model_store.token(["iris"], ["read", "write"])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    function = run_function(TRAIN_DIR, function_env(model_store, writer.token, TMPDIR=str(tmp)))
    answers: list[requests.Response] = []
    # A forest big enough to still be training when the signal comes (a few seconds on this machine).
    body = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 400}}
    request = threading.Thread(
        target=lambda: answers.append(requests.post(f"{function.url}/", json=body, timeout=120))
    )
    idle_cpu = _cpu_seconds(function.process.pid)
    request.start()
    # Training is the only thing that makes an idle train function burn CPU: half a second of it means the
    # request is being worked on.
    deadline = time.monotonic() + 30
    while _cpu_seconds(function.process.pid) - idle_cpu < 0.5:
        assert time.monotonic() < deadline and request.is_alive(), f"training never started:\n{function.log()}"
        time.sleep(0.02)

    function.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while (tmp / ".lock").exists():  # the lock goes first: an exec probe fails while the request still runs
        assert time.monotonic() < deadline, "the lock file outlived SIGTERM"
        time.sleep(0.01)
    request.join(120)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert answers[0].json()["model"] == {"name": "iris", "version": 1}
    assert function.process.wait(STOP_TIMEOUT_SECONDS) in (0, -signal.SIGTERM)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (fields 14 and 15 of its stat line)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
