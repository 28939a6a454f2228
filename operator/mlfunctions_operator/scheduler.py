"""When each object is reconciled: its reconcile loop.

Every MLFunction and ModelStore has one loop. It reconciles at once; then again after a back-off (2, 4, 8 ... s, up
to a cap) while a failure may clear by itself, and after the resync period (with jitter, so objects created
together do not resync together) in any case. Changes wake the loop early: a new generation of the object's spec,
or a changed report about its child (what OpenFaaS says of the Function). A wake-up that only echoes the pass that
just ran (the watch event of its own apply, carrying what the pass already saw) is dropped. A wake-up restarts the
back-off: something changed, so the next failure is a new one.

One loop per object means an object is never reconciled twice at the same time. Pure asyncio: no kopf, no API
calls, and time comes from a Clock, so the schedule is tested without waiting.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Protocol


def backoff(attempt: int, cap: float, base: float = 2.0) -> float:
    """Seconds before retry number `attempt` (0-based): 2, 4, 8, ... up to `cap`."""
    return min(cap, base * 2 ** min(attempt, 16))


def resync_jitter() -> float:
    return random.uniform(0.9, 1.1)


@dataclass
class Schedule:
    """How long to wait after a pass: the back-off while passes ask to retry, else the resync period."""

    resync_seconds: float
    retry_max_seconds: float
    jitter: Callable[[], float] = resync_jitter
    attempt: int = 0  # retries in a row so far

    def next_delay(self, retry: bool) -> float:
        if retry:
            delay = backoff(self.attempt, self.retry_max_seconds)
            self.attempt += 1
            return delay
        self.attempt = 0
        return self.resync_seconds * self.jitter()

    def woken(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class Pass:
    """How a pass went, as far as the schedule cares."""

    retry: bool                      # try again after a back-off, not only at the next resync
    observed: Hashable | None = None  # the child as the pass saw it (echo suppression)
    finished: bool = True            # False: the pass failed before it could say what it saw
    gone: bool = False               # the object no longer exists: the loop ends


class Wakeups:
    """What may wake one object's loop early; the handlers of kopf's watch events feed it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.generation: int | None = None  # of the spec the current (or last) pass reconciles
        self._spec_changed = False
        self._model_changed = False
        self._seen: Hashable | None = None      # the child as the last finished pass saw it
        self._reported: Hashable | None = None  # the child as its latest watch event says

    def begin_pass(self, generation: int | None) -> None:
        self.event.clear()
        self._spec_changed = False
        self._model_changed = False
        self.generation = generation

    def object_changed(self, generation: int | None) -> None:
        """A watch event of the object itself. Only a new generation (a spec change) wakes: the events of our own
        status writes do not."""
        if generation != self.generation:
            self._spec_changed = True
            self.event.set()

    def model_changed(self) -> None:
        """The model the object serves changed in its store (model_feed.py): the next pass looks it up again. Never
        dropped as an echo: the pass running now may have looked before the change."""
        self._model_changed = True
        self.event.set()

    def child_reported(self, observation: Hashable) -> None:
        self._reported = observation
        if observation != self._seen:
            self.event.set()

    def child_changed(self) -> None:
        """Another child changed or went (a watch event of a ServiceAccount, a deleted Function): the next pass
        puts it back. Its echo of the pass's own write, if it arrives during the pass, is dropped by settle()."""
        self.event.set()

    def settle(self, observation: Hashable | None) -> None:
        """After a finished pass: drop a wake-up that only echoes what the pass itself just did and saw."""
        self._seen = observation
        if self.event.is_set() and not (self._spec_changed or self._model_changed) and self._reported == observation:
            self.event.clear()


class Clock(Protocol):
    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until `event` is set (True) or `timeout` seconds have passed (False)."""


class RealClock:
    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        return True


async def run(wakeups: Wakeups, schedule: Schedule, snapshot: Callable[[], dict],
              reconcile: Callable[[dict], Awaitable[Pass]], clock: Clock | None = None) -> None:
    """Reconcile the object until it is gone (or the task is cancelled). `snapshot()` is one consistent view of
    the object as it is now (its live body keeps changing); `reconcile` runs one pass over it."""
    clock = clock or RealClock()
    while True:
        view = snapshot()
        wakeups.begin_pass(view["metadata"].get("generation"))
        outcome = await reconcile(view)
        if outcome.gone:
            return
        if outcome.finished:
            wakeups.settle(outcome.observed)
        if await clock.wait(wakeups.event, schedule.next_delay(outcome.retry)):
            schedule.woken()
