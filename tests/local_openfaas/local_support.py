"""Helpers shared by the local runtime and gateway tests (a module of its own: `conftest` is not importable by name
when every test folder has one)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import requests
from mlfunctions_harness.processes import descendants  # noqa: F401  (re-exported for the tests)

ECHO_DIR = Path(__file__).parent / "echo_function"
ECHO_IMAGE = "localhost/echo:test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def deploy(gw, name: str, env: dict | None = None, labels: dict | None = None, method: str = "POST", **extra):
    body = {"service": name, "image": ECHO_IMAGE, "envVars": env or {}, "labels": labels or {}, **extra}
    return requests.request(method, gw.url + "/system/functions", json=body, auth=gw.basic_auth, timeout=30)


def describe(gw, name: str) -> dict:
    response = requests.get(f"{gw.url}/system/function/{name}", auth=gw.basic_auth, timeout=10)
    response.raise_for_status()
    return response.json()


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left
