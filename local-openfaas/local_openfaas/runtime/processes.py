"""Function processes as asyncio sees them: spawned in their own process group, killed with their parent, and
awaited through a pidfd (no child watcher, no polling)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _own_group_dies_with_parent() -> None:
    # Own process group: stopping a function stops whatever it forked. PDEATHSIG: a SIGKILLed runtime leaves
    # no orphaned functions behind (it follows the forking thread: we fork from the event loop's thread).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgid(0, 0)


def spawn(argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, stdin=subprocess.DEVNULL,
          pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=pass_fds, preexec_fn=_own_group_dies_with_parent)


def exit_future(process: subprocess.Popen) -> asyncio.Future:
    """A future that resolves to the exit code when `process` exits (and reaps it)."""
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
    """SIGTERM the process group, SIGKILL it after `grace` seconds, and wait for the exit."""
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
    # Whatever the function left behind in its group goes too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def http_ok(port: int, path: str = "/_/health", timeout: float = 1.0) -> bool:
    """Whether GET http://127.0.0.1:<port><path> answers 2xx (a readiness probe; raw HTTP/1.0, no pooling)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return len(parts) >= 2 and parts[1][:1] == b"2"
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
