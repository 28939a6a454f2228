"""The connector's time. The system clock (UTC) in production; a clock that runs `rate` times faster lets a test see
a schedule of every minute fire several times in a few seconds, through the same scheduling loop."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, UTC."""

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock's time last on the wall clock (what asyncio.sleep takes)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, seconds: float) -> float:
        return seconds


class FastClock:
    """Starts at the system time and runs `rate` times faster than it (rate 60: a minute a second)."""

    def __init__(self, rate: float, start: datetime | None = None):
        if rate <= 0:
            raise ValueError(f"clock rate must be positive, not {rate}")
        self.rate = rate
        self._origin = start or datetime.now(UTC)
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._started) * self.rate)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.rate


def clock_for(rate: float) -> Clock:
    return SystemClock() if rate == 1 else FastClock(rate)
