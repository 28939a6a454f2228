"""A work queue of keys, after client-go's: a key queued many times before a worker takes it is processed once,
and a key that failed comes back after a per-key exponential back-off. Meant for one worker thread."""

from __future__ import annotations

import heapq
import threading
import time

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0


class WorkQueue:
    def __init__(self, first: float = BACKOFF_FIRST, maximum: float = BACKOFF_MAX):
        self._first, self._maximum = first, maximum
        self._ready: list[str] = []
        self._queued: set[str] = set()
        self._delayed: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}   # each waiting key once, at its earliest time (heap entries may be stale)
        self._failures: dict[str, int] = {}
        self._wake = threading.Condition()

    def add(self, key: str) -> None:
        with self._wake:
            if key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
                self._wake.notify()

    def retry(self, key: str) -> float:
        """Queue `key` again after its back-off (doubling with each failure in a row); returns the delay."""
        with self._wake:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            delay = min(self._maximum, self._first * 2 ** failures)
            due = time.monotonic() + delay
            if due < self._due.get(key, float("inf")):
                self._due[key] = due
                heapq.heappush(self._delayed, (due, key))
            self._wake.notify()
            return delay

    def forget(self, key: str) -> None:
        """`key` succeeded: its next failure starts the back-off afresh."""
        with self._wake:
            self._failures.pop(key, None)

    def get(self, timeout: float) -> str | None:
        """The next key to process, or None after `timeout` seconds without one."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while True:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    due, key = heapq.heappop(self._delayed)
                    if self._due.get(key) != due:
                        continue
                    del self._due[key]
                    if key not in self._queued:
                        self._queued.add(key)
                        self._ready.append(key)
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    return key
                wait = deadline - now
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - now)
                if deadline <= now:
                    return None
                self._wake.wait(max(wait, 0.001))
