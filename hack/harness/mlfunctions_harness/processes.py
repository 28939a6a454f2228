"""Child processes that never outlive the process that started them.

Each child gets its own process group (so a Ctrl-C in the terminal reaches only us, and we stop it in order) and
PR_SET_PDEATHSIG, so the kernel kills it even when we are killed with SIGKILL and no cleanup code runs.
PDEATHSIG follows the *thread* that forked: start children from a long-lived thread (the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgid(0, 0)


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start `command` with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class NotHealthy(RuntimeError):
    """A started server exited, or did not answer 200 in time; the message ends with its log."""


def wait_healthy(url: str, process: subprocess.Popen, what: str, log_path: Path, timeout: float = 60.0,
                 **request_options) -> None:
    """Poll `url` until it answers 200, failing at once if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotHealthy(f"{what} exited with code {process.returncode}; its log ends with:\n{tail(log_path)}")
        try:
            response = requests.get(url, timeout=2, **request_options)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}: {response.text[:300]}"
        except requests.RequestException as error:
            last_error = str(error)
        time.sleep(0.1)
    raise NotHealthy(f"{what} not healthy at {url} after {timeout:.0f}s ({last_error}); its log ends with:\n"
                     + tail(log_path))


def descendants(root: int) -> list[int]:
    """Every live process below `root` in the process tree."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found
