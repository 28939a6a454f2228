"""The cron-connector's loop: follow the functions the runtime has (the view GET /system/functions gives), keep
each one's next time, and invoke it through the gateway when that time comes, as OpenFaaS's cron-connector does:
`POST <gateway>/function/<name>.<namespace>` (or /async-function with `async: "true"`), an empty body and no
credential (/function is public), one call per scheduled time.

What it does as robfig/cron (the connector's scheduler) does: a function's first time is the first one after it
was seen; after a run, the next one after the moment it ran (times missed while the connector was down, or while
a run was late, are not made up). What it does differently: it looks at the functions every `probe_seconds`
(the real one every 10 s) and does not start a run while the function's previous run is still going (that time
is skipped and logged; robfig would start a second call). A run's outcome is kept per function and handed to a
recorder (on a cluster: an annotation on the Function, kube_record.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from local_openfaas.cron.clock import Clock, SystemClock
from local_openfaas.cron.record import Run, RunRecord
from local_openfaas.cron.schedule import CronFunction, cron_functions
from local_openfaas.runtime.spec import FunctionSpec

log = logging.getLogger("mlfunctions.cron")
PROBE_SECONDS = 1.0


class Recorder:
    """Where run records go; this base keeps them nowhere but in the connector (the standalone gateway)."""

    async def record(self, function: CronFunction, record: RunRecord) -> None:
        return None

    async def forget(self, function: CronFunction) -> None:
        """The function is off the schedule (deleted, or no longer annotated)."""
        return


@dataclass
class _Entry:
    function: CronFunction
    next_time: datetime
    last_run: Run | None = None
    running: asyncio.Task | None = None


@dataclass
class Counts:
    """What the connector did, for /metrics: runs by function and answer ("none": no answer)."""

    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # times that came while the previous run went on
    passes: int = 0


class CronConnector:
    def __init__(self, functions: Callable[[], Iterable[FunctionSpec]], gateway_url: str, *,
                 clock: Clock | None = None, recorder: Recorder | None = None,
                 probe_seconds: float = PROBE_SECONDS, timeout: float = 300.0):
        self._functions = functions
        self.gateway_url = gateway_url.rstrip("/")
        self.clock = clock or SystemClock()
        self._recorder = recorder or Recorder()
        self._probe_seconds = probe_seconds
        self._timeout = timeout
        self.entries: dict[tuple[str, str], _Entry] = {}
        self.counts = Counts()
        self._refused: dict[tuple[str, str], str] = {}
        self._writes: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        self._task = asyncio.create_task(self._run_forever(), name="cron-connector")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *(e.running for e in self.entries.values())) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._writes, return_exceptions=True)
        if self._session:
            await self._session.close()

    async def _run_forever(self) -> None:
        while True:
            try:
                self.step()
            except Exception:  # one bad pass must not end the schedule
                log.exception("cron-connector pass failed")
            self.counts.passes += 1
            await asyncio.sleep(self._delay())

    def _delay(self) -> float:
        """Until the next time due, but at most probe_seconds: new, changed and deleted functions are seen then."""
        if not self.entries:
            return self._probe_seconds
        soonest = min(entry.next_time for entry in self.entries.values())
        wait = self.clock.real_seconds((soonest - self.clock.now()).total_seconds())
        return max(0.0, min(self._probe_seconds, wait))

    # ---- one pass ----

    def step(self) -> None:
        now = self.clock.now()
        self._follow(now)
        for entry in self.entries.values():
            if entry.next_time <= now:
                self._fire(entry, now)

    def _follow(self, now: datetime) -> None:
        """Schedule new functions, reschedule changed ones, drop deleted ones."""
        found, refused = cron_functions(self._functions())
        for key, reason in refused.items():
            if self._refused.get(key) != reason:
                log.warning("function's schedule cannot run; left out", extra={"function": key, "error": reason})
        self._refused = refused
        for key in [k for k, entry in self.entries.items() if found.get(k) != entry.function]:
            entry = self.entries.pop(key)
            log.info("function removed from the schedule", extra={"function": entry.function.qualified})
            if key not in found:
                self._write(self._recorder.forget(entry.function))
        for key, function in found.items():
            if key not in self.entries:
                entry = self.entries[key] = _Entry(function, function.schedule.next_after(now))
                log.info("function added to the schedule", extra={
                    "function": function.qualified, "schedule": function.schedule.expression,
                    "nextScheduleTime": entry.next_time.isoformat()})
                self._write(self._recorder.record(function, RunRecord(function.schedule.expression,
                                                                      entry.next_time)))

    def _fire(self, entry: _Entry, now: datetime) -> None:
        scheduled, entry.next_time = entry.next_time, entry.function.schedule.next_after(now)
        if entry.running is not None and not entry.running.done():
            name = entry.function.qualified
            self.counts.skipped[name] = self.counts.skipped.get(name, 0) + 1
            log.warning("previous run still going; this time is skipped",
                        extra={"function": name, "scheduleTime": scheduled.isoformat()})
            return
        entry.running = asyncio.create_task(self._run(entry, scheduled), name=f"cron {entry.function.qualified}")

    # ---- a run ----

    async def _run(self, entry: _Entry, scheduled: datetime) -> None:
        function = entry.function
        log.info("executing function", extra={"function": function.qualified, "scheduleTime": scheduled.isoformat()})
        started, began = self.clock.now(), time.monotonic()
        code, message = await self._invoke(function)
        run = Run(scheduled, started, code, time.monotonic() - began, message)
        entry.last_run = run
        key = (function.qualified, "none" if code is None else str(code))
        self.counts.runs[key] = self.counts.runs.get(key, 0) + 1
        (log.info if run.succeeded else log.warning)("function executed", extra={
            "function": function.qualified, "statusCode": code, "durationSeconds": round(run.duration_seconds, 3),
            **({"error": message} if message else {})})
        if self.entries.get(function.key) is entry:  # not removed from the schedule meanwhile
            await self._recorder.record(function, RunRecord(function.schedule.expression, entry.next_time, run))

    async def _invoke(self, function: CronFunction) -> tuple[int | None, str]:
        route = "async-function" if function.asynchronous else "function"
        try:
            async with self._session.post(f"{self.gateway_url}/{route}/{function.qualified}", data=b"") as response:
                body = await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return None, f"no answer from the gateway: {error!r}"
        if 200 <= response.status < 300:
            return response.status, ""
        return response.status, body.decode(errors="replace").strip()

    def _write(self, write: Awaitable[None]) -> None:
        """Record writes of the loop's own pass go on beside it: a slow API server must not delay a run."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
