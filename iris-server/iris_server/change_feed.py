"""Following the change log (change_log.py): what GET /v1/changes (api/changes.py) waits on, and which changes a
caller may see.

A waiting request wakes when this process logs a change (the catalog calls ChangeSignal.notify after the commit),
and when the log's newest number moves, which one poller per process reads every POLL_SECONDS while anyone waits
(one read of the counter row by its primary key): writes made by other uvicorn workers, or by other replicas on
a shared database, have no other way to wake it. No per-model and no per-request polling: one read per process
serves every waiting request, however many (each then reads only its own page when woken).

Who sees what: a change is shown to the caller only when it may read the model now (its token's globs and rights,
and for a namespaced token the model's owner and grants, as every read is authorized). The admin sees every
change. Sequence numbers are store-wide, so a namespaced caller's cursor jumps over the changes of models it may
not read: it can tell that something changed elsewhere, never what or where.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable

from . import tenancy
from .ownership import Ownership
from .records import Change
from .tokens import Principal, Right

log = logging.getLogger("iris_server")

POLL_SECONDS = 0.25  # how late a change made by another process may be noticed, at most


class ChangeSignal:
    """Wakes this process's waiting requests: when it logs a change, and for good when the server stops (uvicorn
    waits for open requests before it exits; a long-poll must not hold a restart up for its whole timeout)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # notify runs in the threadpool threads that write
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.draining = False
        self.waiting = 0  # requests waiting now (api/changes.py bounds them)
        self.latest_seen = 0  # the newest sequence number the poller has read
        self._poller: asyncio.Task | None = None

    def notify(self) -> None:
        """From any thread: wake every waiter."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def drain(self) -> None:
        self.draining = True
        self.notify()

    async def wait(self, seconds: float, known: int, read_latest: Callable[[], int]) -> None:
        """Until the log may have moved past `known` (what the caller's last read saw), or `seconds` have passed.
        `read_latest` is what the poller reads (the newest sequence number), started here if it is not running."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll(read_latest), name="change-log-poller")
            if self.latest_seen > known:
                return  # the poller read a newer number after the caller's read: nothing will wake it for that
            await asyncio.wait_for(entry[1].wait(), timeout=seconds)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)

    async def _poll(self, read_latest: Callable[[], int]) -> None:
        """While anyone waits: read the log's newest number, and wake every waiter when it moved (up, or down: a
        store restored from a backup answers the waiters 410)."""
        while self._waiters:
            try:
                latest = read_latest()
            except Exception as error:  # noqa: BLE001 - the database down: waiters answer at their timeout
                log.warning("change log unreadable", extra={"error": str(error)})
            else:
                if latest != self.latest_seen:
                    self.latest_seen = latest
                    self.notify()
            await asyncio.sleep(POLL_SECONDS)


# One per process: the catalog of every app in it notifies it, and http_protocol drains it when uvicorn stops.
SIGNAL = ChangeSignal()


def visible(caller: Principal, changes: Iterable[Change], ownership: Ownership) -> list[Change]:
    """The changes of models `caller` may read now, in order."""
    readable = [change for change in changes if caller.may(Right.READ, change.model)]
    if caller.namespace is None or not readable:
        return readable
    access = ownership.access_map({change.model for change in readable})
    return [
        change
        for change in readable
        if tenancy.check(caller.namespace, Right.READ, access[change.model]) is None
    ]
