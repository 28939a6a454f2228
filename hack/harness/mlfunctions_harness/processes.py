"""Child processes that never outlive the process that started them, and waiting for what they do.

Each child gets its own process group (so a Ctrl-C in the terminal reaches only us, we stop it in order, and
stopping it stops whatever it forked) and PR_SET_PDEATHSIG, so the kernel kills it even when we are killed with
SIGKILL and no cleanup code runs. PDEATHSIG follows the *thread* that forked: start children from a long-lived
thread (the main thread, or the event loop's).

Synchronous callers (the harness, `make up`, tests) stop a child with stop(); the local OpenFaaS runtime, which
runs on asyncio, awaits a child's exit through exit_future() and stops it with terminate().
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests

_PR_SET_PDEATHSIG = 1
T = TypeVar("T")


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgid(0, 0)


def spawn(command: list[str], log_path: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None,
          stdin=subprocess.DEVNULL, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start `command` with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdin=stdin, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                pass_fds=pass_fds, preexec_fn=_die_with_parent)


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


def exit_future(process: subprocess.Popen) -> asyncio.Future:
    """A future that resolves to the exit code when `process` exits (and reaps it): a pidfd watched by the
    event loop, so there is no child watcher and no polling."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        future.set_result(process.wait())
        return future

    def exited() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not future.done():
            future.set_result(process.wait())

    loop.add_reader(pidfd, exited)
    return future


async def terminate(process: subprocess.Popen, exited: asyncio.Future, grace: float) -> None:
    """stop() for asyncio: SIGTERM the process group, SIGKILL it after `grace` seconds, and await the exit
    (`exited` from exit_future)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if exited.done():
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            await asyncio.wait_for(asyncio.shield(exited), wait)
            break
        except asyncio.TimeoutError:
            continue
    # Whatever the process left behind in its group goes too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def free_port(address: str = "127.0.0.1") -> int:
    """A port on `address` that was free a moment ago (the kernel's pick): for a server about to be started."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_for(condition: Callable[[], T], timeout: float = 20.0, what: str = "the condition",
             interval: float = 0.05) -> T:
    """Call `condition` until it returns something true (returned), or raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class NotHealthy(RuntimeError):
    """A started server exited, or did not answer 200 in time; the message ends with its log."""


def wait_healthy(url: str, process: subprocess.Popen, what: str, log_path: Path, timeout: float = 60.0,
                 **request_options) -> None:
    """Poll `url` until it answers 200, failing at once if `process` exits meanwhile."""
    last_error = "no answer yet"

    def healthy() -> bool:
        nonlocal last_error
        if process.poll() is not None:
            raise NotHealthy(f"{what} exited with code {process.returncode}; its log ends with:\n{tail(log_path)}")
        try:
            response = requests.get(url, timeout=2, **request_options)
        except requests.RequestException as error:
            last_error = str(error)
            return False
        if response.status_code == 200:
            return True
        last_error = f"HTTP {response.status_code}: {response.text[:300]}"
        return False

    try:
        wait_for(healthy, timeout, what, interval=0.05)
    except TimeoutError:
        raise NotHealthy(f"{what} not healthy at {url} after {timeout:.0f}s ({last_error}); its log ends with:\n"
                         + tail(log_path)) from None


def pid_alive(pid: int) -> bool:
    """Whether a process is running (a zombie has exited; only its parent's bookkeeping is left)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


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
