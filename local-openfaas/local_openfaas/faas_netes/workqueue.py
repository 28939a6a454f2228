"""A work queue of keys, after client-go's: a key queued many times before the worker takes it is processed once,
and a key that failed comes back after a per-key exponential back-off. For one worker task on the event loop."""

from __future__ import annotations

import asyncio
from collections import deque

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0


class WorkQueue:
    def __init__(self, first: float = BACKOFF_FIRST, maximum: float = BACKOFF_MAX):
        self._first, self._maximum = first, maximum
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}  # each waiting key once, at its earliest time
        self._wake = asyncio.Event()

    def add(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._wake.set()

    def retry(self, key: str) -> float:
        """Queue `key` again after its back-off (doubling with each failure in a row); returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self._maximum, self._first * 2 ** failures)
        loop = asyncio.get_running_loop()
        waiting = self._timers.get(key)
        if waiting is None or waiting.when() > loop.time() + delay:
            if waiting is not None:
                waiting.cancel()
            self._timers[key] = loop.call_later(delay, self._due, key)
        return delay

    def forget(self, key: str) -> None:
        """`key` succeeded: its next failure starts the back-off afresh."""
        self._failures.pop(key, None)

    async def get(self) -> str:
        while not self._ready:
            self._wake.clear()
            await self._wake.wait()
        key = self._ready.popleft()
        self._queued.discard(key)
        return key

    def _due(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)
