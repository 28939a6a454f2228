"""What the autoscaler measures per function: completed requests per second, requests in flight, idle time,
and CPU use of the replica processes."""

from __future__ import annotations

import os
import time
from collections import deque

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """Counts a function's requests as the gateway proxies them. Not thread-safe: used from the event loop."""

    def __init__(self, window: float = 10.0, clock=time.monotonic):
        self.window, self._clock = window, clock
        self.inflight = 0
        self.invocations = 0
        self.last_activity = clock()  # deployment counts as activity: a new function is not idle yet
        self._completions: deque[tuple[int, int]] = deque()  # (second, count)

    def started(self) -> None:
        self.inflight += 1
        self.last_activity = self._clock()

    def finished(self) -> None:
        self.inflight -= 1
        self.invocations += 1
        now = self._clock()
        self.last_activity = now
        second = int(now)
        if self._completions and self._completions[-1][0] == second:
            self._completions[-1] = (second, self._completions[-1][1] + 1)
        else:
            self._completions.append((second, 1))

    def touch(self) -> None:
        """Activity that is not a request (a deployment or a manual scale-up): restarts the idle clock."""
        self.last_activity = self._clock()

    def rps(self) -> float:
        """Completed requests per second over the last `window` seconds."""
        now = self._clock()
        oldest = int(now - self.window)
        while self._completions and self._completions[0][0] < oldest:
            self._completions.popleft()
        return sum(count for _, count in self._completions) / self.window

    def idle_seconds(self) -> float:
        return 0.0 if self.inflight else self._clock() - self.last_activity


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (from /proc), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime and stime, fields 14 and 15 of stat


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (from /proc), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
