"""One `up` per state directory, and nothing left of an earlier one that was killed.

The lock is an flock on .stack/up.lock (which holds the holder's pid), which the kernel releases when its holder
dies however it dies (even SIGKILL), so a lock is never stale. .stack/up.json names the processes it started (pid and start
time, so a recycled pid is never mistaken for one of them). Every child of `up` dies with it (PDEATHSIG), but
asynchronously, and its ports are free only once it has gone: the next `up` kills whatever of the recorded
processes still runs and waits until each has gone before it starts anything.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

from mlfunctions_harness.processes import descendants, wait_for

from mlfunctions_stack import state_files
from mlfunctions_stack.commands import StackError

LOCK, RECORD = "up.lock", "up.json"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None once it has gone
    (a zombie has gone: only its parent's bookkeeping is left)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


class RunLock:
    """Held by the running `up` for its whole life; `down` uses it to find and stop that `up`."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.lock_path, self.record_path = state_dir / LOCK, state_dir / RECORD
        self._descriptor: int | None = None

    def holder(self) -> int | None:
        """The pid of the `up` holding the lock, None when no `up` holds it."""
        if self._try_lock():
            self._unlock()
            return None
        return self._locked_by()

    def acquire(self) -> None:
        """Take the lock, or StackError naming the `up` that holds it; then clear what a killed `up` left."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._try_lock():
            pid = self._locked_by()
            raise StackError(f"already running with {self.state_dir}: pid {pid}. Stop it with Ctrl-C in its terminal "
                             f"or `make down`, or run another with its own --state-dir and ports")
        try:
            self.sweep()
            self.remember()
        except BaseException:
            self.release()
            raise

    def remember(self) -> None:
        """Record this process and every process below it (call after each start step)."""
        children = [{"pid": pid, "start": start, "command": _cmdline(pid)[:200]}
                    for pid in descendants(os.getpid()) if (start := start_time(pid)) is not None]
        state_files.write_json(self.record_path, {"pid": os.getpid(), "start": start_time(os.getpid()),
                                                  "processes": children})

    def sweep(self, timeout: float = 20.0) -> list[int]:
        """SIGKILL what an earlier `up` started and still runs (its record says what), and wait until it has
        gone; returns the pids it killed."""
        record = state_files.read_json(self.record_path) or {}
        leftovers = [entry for entry in [{"pid": record.get("pid"), "start": record.get("start")},
                                         *record.get("processes", [])]
                     if isinstance(entry, dict) and isinstance(entry.get("pid"), int) and entry["pid"] != os.getpid()
                     and entry.get("start") is not None and start_time(entry["pid"]) == entry["start"]]
        for entry in leftovers:
            for kill in (os.killpg, os.kill):  # each child leads its own process group; the group goes with it
                try:
                    kill(entry["pid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

        def gone() -> bool:
            return all(start_time(entry["pid"]) != entry["start"] for entry in leftovers)

        try:
            wait_for(gone, timeout, "the processes of an earlier `up` to exit", interval=0.05)
        except TimeoutError:
            alive = [f"{e['pid']} ({e.get('command', '?')})" for e in leftovers if start_time(e["pid"]) == e["start"]]
            raise StackError(f"processes of an earlier `up` do not exit after SIGKILL: {', '.join(alive)}; "
                             "end them (kill -9 <pid>) and run `make up` again") from None
        return [entry["pid"] for entry in leftovers]

    def release(self) -> None:
        """Forget the record (everything it names has stopped) and let go of the lock."""
        if self._descriptor is None:
            return
        self.record_path.unlink(missing_ok=True)
        self._unlock()

    def _try_lock(self) -> bool:
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return True

    def _locked_by(self) -> int:
        """The pid the lock's holder wrote into the lock file (0 in the instant before it has)."""
        try:
            return int(self.lock_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _unlock(self) -> None:
        os.close(self._descriptor)  # closing the only descriptor releases the flock
        self._descriptor = None


def stop_running(state_dir: Path, timeout: float = 120.0) -> str:
    """`down`: SIGTERM the `up` holding `state_dir`'s lock, wait until it has let go (it stops everything in
    order), then sweep what is left; returns what it did, for the terminal."""
    if not state_dir.exists():
        return f"nothing to stop: {state_dir} does not exist"
    lock = RunLock(state_dir)
    pid = lock.holder()
    if pid is None:
        lock.acquire()  # sweeps what a killed `up` left
        lock.release()
        return f"no `up` is running with {state_dir}"
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while lock.holder() is not None:
        if time.monotonic() > deadline:
            raise StackError(f"`up` (pid {pid}) has not stopped {timeout:.0f}s after SIGTERM; kill -9 {pid} and run "
                             "`make down` again (it then removes what is left)")
        time.sleep(0.1)  # the lock has no event to wait on; the deadline bounds this
    lock.acquire()
    lock.release()
    return f"stopped `up` (pid {pid})"
