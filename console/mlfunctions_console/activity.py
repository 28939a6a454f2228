"""What the console has seen functions do: the gateway's invocation counter sampled over a window (recent
invocations), and the calls the console made itself (latency, cold starts, the version that answered).

In memory and per replica: a restarted console starts counting again, which the pages say ("since ...")."""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 300.0
CALLS_KEPT = 20


@dataclass(frozen=True)
class Call:
    at: float  # time.time()
    kind: str  # predict | train
    seconds: float
    status: int | None
    cold: bool
    version: int | None = None


@dataclass(frozen=True)
class Recent:
    invocations: int | None  # None: not sampled twice yet
    seconds: float  # the span the count covers


class Activity:
    def __init__(self, window_seconds: float = WINDOW_SECONDS):
        self.window = window_seconds
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._calls: dict[str, deque[Call]] = {}
        self.started = time.time()

    def observe(self, totals: dict[str, float], now: float | None = None) -> None:
        """The gateway's invocation totals per function (`<name>.<namespace>`), as read at `now`."""
        now = time.monotonic() if now is None else now
        for function, total in totals.items():
            samples = self._samples.setdefault(function, deque())
            samples.append((now, total))
            # Keep one sample older than the window, so the count spans the whole window once it can.
            while len(samples) > 2 and samples[1][0] <= now - self.window:
                samples.popleft()

    def recent(self, function: str) -> Recent:
        samples = self._samples.get(function)
        if not samples or len(samples) < 2:
            return Recent(None, 0.0)
        (first_at, first), (last_at, last) = samples[0], samples[-1]
        # A counter that went down was reset (the gateway restarted): count from the reset.
        count = last - first if last >= first else last
        return Recent(int(count), last_at - first_at)

    def record(self, function: str, call: Call) -> None:
        self._calls.setdefault(function, deque(maxlen=CALLS_KEPT)).append(call)

    def calls(self, function: str) -> list[Call]:
        return list(self._calls.get(function, ()))

    def median_ms(self, function: str, kind: str = "predict") -> float | None:
        """Median time of the console's own answered calls, warm ones only (a cold start is not latency)."""
        times = [c.seconds for c in self.calls(function) if c.kind == kind and c.status == 200 and not c.cold]
        return statistics.median(times) * 1000 if times else None

    def last_version(self, function: str) -> int | None:
        answered = [c for c in self.calls(function) if c.version is not None]
        return answered[-1].version if answered else None
