"""Keeps one function at its desired replica count: starts replicas, restarts crashed ones with back-off,
replaces outdated ones after a spec change (new ones ready first), and stops extras."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from local_openfaas.runtime.programs import Program
from local_openfaas.runtime.replica import Replica, ReplicaLauncher
from local_openfaas.runtime.spec import FunctionSpec

log = logging.getLogger("mlfunctions.runtime.supervisor")

READY_TIMEOUT = 120.0      # a replica that is not healthy by then is killed and counted as a crash
STOP_GRACE = 5.0
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 10.0
STABLE_AFTER = 10.0        # a replica that lived this long resets the crash back-off
CRASH_LOOP_AFTER = 3       # consecutive failed starts that make it a crash loop (held requests are answered)


@dataclass(frozen=True)
class Snapshot:
    """What the Function's status reports."""

    replicas: int            # desired
    available: int           # ready to serve
    crashes: int             # consecutive crashes without a stable replica in between
    last_error: str = ""

    @property
    def unavailable(self) -> int:
        return max(0, self.replicas - self.available)


SecretLoader = Callable[[FunctionSpec], Awaitable[dict[str, bytes]]]


class FunctionSupervisor:
    def __init__(self, spec: FunctionSpec, program: Program, launcher: ReplicaLauncher, secrets: SecretLoader,
                 replicas: int, on_change: Callable[[FunctionSupervisor], None]):
        self.spec, self.program = spec, program
        self.desired = replicas
        self._launcher, self._secrets, self._on_change = launcher, secrets, on_change
        self.replicas: list[Replica] = []
        self.starts = 0  # replicas started, restarts included
        self._ready: list[Replica] = []
        self._next = 0
        self._crashes = 0
        self._retry_at = 0.0
        self._last_error = ""
        self._any_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._closed = False
        self._last_snapshot: Snapshot | None = None
        self._task = asyncio.create_task(self._run(), name=f"supervise {spec.namespace}/{spec.name}")

    # ---- used by the gateway and the autoscaler ----

    def pick(self) -> Replica | None:
        """A ready replica, round-robin; None when there is none."""
        ready = self._ready
        if not ready:
            return None
        self._next = (self._next + 1) % len(ready)
        return ready[self._next]

    async def wait_ready(self, timeout: float) -> Replica | None:
        """A ready replica, waiting up to `timeout` seconds for one (scale from zero holds the request here)."""
        deadline = time.monotonic() + timeout
        while True:
            replica = self.pick()
            if replica is not None or self._closed:
                return replica
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._crashes >= CRASH_LOOP_AFTER:
                return None  # a function that keeps failing to start gets its callers an answer now
            try:
                # Wakes at once when a replica is ready; the short timeout re-checks for a crash loop.
                await asyncio.wait_for(self._any_ready.wait(), min(remaining, 0.1))
            except asyncio.TimeoutError:
                continue

    def scale(self, replicas: int) -> None:
        if replicas != self.desired:
            log.info("scaling", extra={"function": self.spec.name, "namespace": self.spec.namespace,
                                       "from": self.desired, "to": replicas})
            self.desired = replicas
            self._wake.set()
            self._publish()

    def update(self, spec: FunctionSpec, program: Program) -> None:
        self.spec, self.program = spec, program
        self._crashes, self._retry_at = 0, 0.0
        self._wake.set()
        self._publish()

    def snapshot(self) -> Snapshot:
        return Snapshot(self.desired, len(self._ready), self._crashes, self._last_error)

    def replaced_by(self, replica: Replica) -> bool:
        return not self.spec.runs_like(replica.spec)

    async def close(self) -> None:
        self._closed = True
        self._any_ready.set()  # release held requests: they get a clear "not available" answer
        self._task.cancel()
        starting = [r.task for r in self.replicas if isinstance(r, _Starting) and r.task]
        for task in starting:
            task.cancel()
        await asyncio.gather(self._task, *starting, return_exceptions=True)
        await asyncio.gather(*(r.stop(STOP_GRACE) for r in self.replicas if isinstance(r, Replica)),
                             return_exceptions=True)
        self.replicas.clear()
        self._refresh_ready()

    # ---- the reconcile loop ----

    async def _run(self) -> None:
        while True:
            self._reconcile()
            self._wake.clear()
            delay = max(0.05, self._retry_at - time.monotonic()) if self._retry_at else 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    def _reconcile(self) -> None:
        current = [r for r in self.replicas if not r.stopping and not self.replaced_by(r)]
        outdated = [r for r in self.replicas if not r.stopping and self.replaced_by(r)]
        missing = self.desired - len(current)
        if missing > 0 and time.monotonic() >= self._retry_at:
            for _ in range(missing):
                self._start_replica()
        elif missing < 0:
            # Stop the ones that serve nothing yet first, then the youngest.
            extras = sorted((r for r in current if isinstance(r, Replica)), key=lambda r: (r.ready, -r.started_at))
            for replica in extras[:-missing]:
                self._stop_replica(replica)
        current_ready = sum(r.ready for r in current)
        if outdated and (current_ready >= self.desired):
            for replica in outdated:
                self._stop_replica(replica)

    def _start_replica(self) -> None:
        self.starts += 1
        placeholder = _Starting(self.spec)
        self.replicas.append(placeholder)  # counted at once so a second reconcile does not start another
        task = asyncio.create_task(self._bring_up(placeholder))
        placeholder.task = task

    async def _bring_up(self, placeholder: _Starting) -> None:
        spec, program = self.spec, self.program
        try:
            secrets = await self._secrets(spec)
            replica = self._launcher.launch(spec, program, secrets)
        except Exception as error:
            self.replicas.remove(placeholder)
            self._crashed(f"could not start a replica: {error}")
            return
        self.replicas[self.replicas.index(placeholder)] = replica
        replica.exited.add_done_callback(lambda _: self._exited(replica))
        if await replica.wait_ready(READY_TIMEOUT):
            log.info("replica ready", extra={"function": spec.name, "namespace": spec.namespace,
                                             "port": replica.port, "warm": replica.warm,
                                             "startSeconds": round(replica.ready_at - replica.started_at, 4)})
            self._refresh_ready()
            self._wake.set()
        elif not replica.exited.done() and not replica.stopping:
            await replica.stop(STOP_GRACE)
            self._remove(replica)
            self._crashed(f"not healthy after {READY_TIMEOUT:.0f}s (log: {replica.log_path})")

    def _stop_replica(self, replica: Replica) -> None:
        replica.stopping = True
        self._refresh_ready()
        task = asyncio.create_task(replica.stop(STOP_GRACE))
        task.add_done_callback(lambda _: self._remove(replica))

    def _exited(self, replica: Replica) -> None:
        if replica.stopping:
            return
        lived = time.monotonic() - replica.started_at
        code = replica.exited.result()
        self._remove(replica)
        self._crashed(f"replica exited with code {code} after {lived:.1f}s (log: {replica.log_path})",
                      stable=lived >= STABLE_AFTER)
        if replica.secrets_dir is not None:
            asyncio.create_task(replica.stop(0))  # removes its secrets folder (the process is gone already)

    def _crashed(self, message: str, stable: bool = False) -> None:
        self._crashes = 1 if stable else self._crashes + 1
        backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._crashes - 1))
        self._retry_at = time.monotonic() + backoff
        self._last_error = message
        log.warning("replica failed", extra={"function": self.spec.name, "namespace": self.spec.namespace,
                                             "error": message, "retryInSeconds": backoff})
        self._wake.set()
        self._publish()

    def _remove(self, replica: Replica) -> None:
        if replica in self.replicas:
            self.replicas.remove(replica)
        self._refresh_ready()
        self._wake.set()

    def _refresh_ready(self) -> None:
        self._ready = [r for r in self.replicas if isinstance(r, Replica) and r.ready]
        if self._ready:
            self._any_ready.set()
            self._last_error = ""
        elif not self._closed:
            self._any_ready.clear()
        self._publish()

    def _publish(self) -> None:
        snapshot = self.snapshot()
        if snapshot != self._last_snapshot:
            self._last_snapshot = snapshot
            self._on_change(self)


class _Starting:
    """Stands in the replica list for a replica whose process is being started."""

    stopping = False
    ready = False

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        self.task: asyncio.Task | None = None
