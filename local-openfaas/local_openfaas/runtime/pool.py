"""Pre-warmed processes: for each environment (a function interpreter, i.e. an image's virtualenv), a few zygotes
(see zygote.py) that have started Python and imported the environment's libraries, waiting to become a replica.
Taking one skips both costs.

The sharing rule is Fission poolmgr's: one pool per environment, shared by every function that runs on it, and
`size` zygotes per environment. A zygote is generic until it is taken; then it becomes one function's replica
for the rest of its life and is never handed back (it leaves the pool when taken and exits when that replica
stops). So no zygote ever holds a function's environment, secrets or data while it waits, and no process serves
two functions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlfunctions_harness import processes
from local_openfaas.runtime.programs import Program

log = logging.getLogger("mlfunctions.runtime.pool")
ZYGOTE = Path(__file__).with_name("zygote.py")
REFILL_DELAY = 1.0
# A replica from the pool reports the modules it has imported at these times after it started: once its start is
# over, and again after its first requests (lazy imports).
LEARN_AT = (1.0, 10.0)


@dataclass
class WarmProcess:
    process: subprocess.Popen
    exited: asyncio.Future
    learn_dir: Path
    learned: tuple  # the learned module lists it preloaded (see WarmPool._learned)

    def become(self, program: Program, env: dict[str, str], log_path: Path) -> None:
        """Hand the zygote its function; from here on it is that function's replica process."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        learn = self.learn_dir / f"{_digest(program.cwd, *program.argv)}.modules"
        assignment = {"argv": list(program.argv), "cwd": str(program.cwd), "env": env, "log": str(log_path),
                      "learn": str(learn), "learn_at": list(LEARN_AT)}
        self.process.stdin.write((json.dumps(assignment) + "\n").encode())
        self.process.stdin.close()


class WarmPool:
    """Keeps `size` ready zygotes of one interpreter + preload set, refilling in the background."""

    def __init__(self, python: str, preload: tuple[str, ...], size: int, pool_dir: Path, base_env: dict[str, str]):
        self.python, self.preload, self.size = python, preload, size
        key = _digest(python, *preload)
        # What the functions of this interpreter imported (learned by their replicas): kept across restarts.
        self.learn_dir = pool_dir / key
        self.learn_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = pool_dir / f"{key}.log"
        self._base_env = base_env
        self.environment = environment_name(python)
        self._ready: list[WarmProcess] = []
        # Outdated zygotes (they lack what was learned) wait here until their replacements are ready, and are
        # taken if a cold start comes first: a renewal never leaves the pool empty.
        self._retiring: list[WarmProcess] = []
        self._starting = 0
        self._spawned: set[subprocess.Popen] = set()  # started, not yet ready
        self._closed = False
        self._tasks: set[asyncio.Task] = set()

    def fill(self) -> None:
        while not self._closed and len(self._ready) + self._starting < self.size:
            self._starting += 1
            task = asyncio.create_task(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def take(self) -> WarmProcess | None:
        """A ready zygote, or None if none is ready right now (the caller then starts the function cold)."""
        # Refill a moment later: a new zygote's imports would compete for the CPU with the replica starting now.
        loop = asyncio.get_running_loop()
        loop.call_later(REFILL_DELAY, self.fill)
        # Once the replica has reported its imports, waiting zygotes that lack them are replaced.
        for moment in LEARN_AT:
            loop.call_later(moment + 0.5, self._renew_outdated)
        for waiting in (self._ready, self._retiring):
            while waiting:
                warm = waiting.pop(0)
                if not warm.exited.done():
                    log.info("warm process taken", extra={
                        "python": self.python, "pid": warm.process.pid, "ready": len(self._ready),
                        "outdated": waiting is self._retiring})
                    return warm
        return None

    def pids(self) -> list[int]:
        """The pool's own processes, starting or waiting (a taken one is its function's replica, not counted)."""
        return sorted({w.process.pid for w in (*self._ready, *self._retiring) if not w.exited.done()}
                      | {p.pid for p in self._spawned if p.poll() is None})

    def _learned(self) -> tuple:
        """The learned module lists, by name and content (a list rewritten unchanged changes nothing)."""
        return tuple(sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest())
                            for p in self.learn_dir.glob("*.modules")))

    def _renew_outdated(self) -> None:
        if self._closed:
            return
        learned = self._learned()
        outdated = [w for w in self._ready if w.learned != learned]
        for warm in outdated:
            self._ready.remove(warm)
            self._retiring.append(warm)  # until its replacement, which preloads what was learned, is ready
        if outdated:
            log.info("warm processes renewed", extra={"python": self.python, "renewed": len(outdated)})
        self.fill()

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        ready, self._ready, self._retiring = [*self._ready, *self._retiring], [], []
        for warm in ready:
            warm.process.stdin.close()  # EOF: the zygote exits by itself
            await processes.terminate(warm.process, warm.exited, grace=2.0)

    async def _start_one(self) -> None:
        read_fd, write_fd = os.pipe()
        argv = [self.python, str(ZYGOTE), "--ready-fd", str(write_fd)]
        for dist in self.preload:
            argv += ["--preload-dist", dist]
        learned = self._learned()
        for name, _ in learned:
            argv += ["--preload-file", str(self.learn_dir / name)]
        process = None
        try:
            process = processes.spawn(argv, self._log_path, cwd=ZYGOTE.parent, env=self._base_env,
                                      stdin=subprocess.PIPE, pass_fds=(write_fd,))
            self._spawned.add(process)
            os.close(write_fd)
            write_fd = -1
            exited = processes.exit_future(process)
            ready = await _read_line(read_fd)
            if ready != b"ready\n" or exited.done():
                log.warning("zygote failed to start", extra={"python": self.python, "log": str(self._log_path)})
                await asyncio.sleep(1.0)  # don't spin on a broken interpreter
                return
            warm = WarmProcess(process, exited, self.learn_dir, learned)
            if self._closed:
                process.stdin.close()
                await processes.terminate(process, exited, grace=2.0)
                return
            self._ready.append(warm)
            exited.add_done_callback(lambda _: self._forget(warm))
            if self._retiring:
                self._retiring.pop(0).process.stdin.close()  # EOF: the outdated one exits by itself
            log.info("warm process ready", extra={"python": self.python, "pid": process.pid,
                                                  "ready": len(self._ready), "learned": bool(learned)})
            if learned != self._learned():
                # A replica reported its imports while this one was starting (after the scheduled renewals
                # looked): renew it now, not at the next renewal or never.
                asyncio.get_running_loop().call_soon(self._renew_outdated)
        except asyncio.CancelledError:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            raise
        except Exception:
            log.exception("starting a warm process failed", extra={"python": self.python})
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        finally:
            self._starting -= 1
            self._spawned.discard(process)
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)

    def _forget(self, warm: WarmProcess) -> None:
        if warm in self._retiring:
            self._retiring.remove(warm)
        if warm in self._ready:
            self._ready.remove(warm)
            self.fill()


def environment_name(python: str) -> str:
    """What the metrics call an environment: the virtualenv's folder (<venv>/bin/python), as an image name
    would be on a cluster."""
    return Path(python).parent.parent.name or python


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]


async def _read_line(fd: int) -> bytes:
    """Everything written to a pipe until its writer closes it (the zygote's one "ready" line)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    chunks: list[bytes] = []

    def readable() -> None:
        chunk = os.read(fd, 64)
        if chunk:
            chunks.append(chunk)
        else:
            loop.remove_reader(fd)
            if not done.done():
                done.set_result(b"".join(chunks))

    loop.add_reader(fd, readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


class WarmPools:
    """One WarmPool per environment (interpreter + preload set): a pool serves every function that runs on that
    virtualenv, and `size` is per environment. There is no cap across environments: there are as many as images
    (two in this project, train and predict), so the pool's memory is at most size x images zygotes, and it is
    counted (`usage`, the gateway's local_openfaas_pool_* gauges)."""

    def __init__(self, size: int, pool_dir: Path, base_env: dict[str, str]):
        self.size, self._pool_dir, self._base_env = size, pool_dir, base_env
        self._pools: dict[tuple[str, tuple[str, ...]], WarmPool] = {}

    def prepare(self, program: Program) -> None:
        if self.size <= 0:
            return
        key = (program.python, program.preload)
        if key not in self._pools:
            self._pools[key] = WarmPool(program.python, program.preload, self.size, self._pool_dir, self._base_env)
        self._pools[key].fill()

    def take(self, program: Program) -> WarmProcess | None:
        pool = self._pools.get((program.python, program.preload))
        return pool.take() if pool else None

    def usage(self) -> dict[str, list[int]]:
        """environment -> the pids of its pool's processes (programs on one virtualenv listing different preload
        sets have a pool each; they count as one environment)."""
        environments: dict[str, list[int]] = {}
        for pool in self._pools.values():
            environments.setdefault(pool.environment, []).extend(pool.pids())
        return environments

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))
        self._pools.clear()
