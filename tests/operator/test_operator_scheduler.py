"""The reconcile loop's schedule (scheduler.py): back-off, resync, wake-ups and echo suppression, on a fake clock.

The clock is the loop's own seam: time passes only while the loop waits, jumping to the end of the wait or to the
next scripted event (a watch event, as kopf's handlers would deliver it). A test sees every pass with its time and
the generation it reconciled, without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mlfunctions_operator.scheduler import Pass, Schedule, Wakeups, resync_jitter, run

RESYNC, CAP = 60.0, 8.0
OK, RETRY, FAILED = Pass(retry=False), Pass(retry=True), Pass(retry=True, finished=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._script: list[tuple[float, Callable[[], None]]] = []

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._script = sorted([*self._script, (when, action)], key=lambda item: item[0])

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        deadline = self.now + timeout
        while not event.is_set():
            if not self._script or self._script[0][0] > deadline:
                self.now = deadline
                return False
            when, action = self._script.pop(0)
            self.now = max(self.now, when)
            action()
        return True


class Loop:
    """One object's loop: its body, its wake-ups, and a script of how its passes go (then it is deleted)."""

    def __init__(self, *outcomes: Pass | Callable[[], Pass]):
        self.clock = FakeClock()
        self.wakeups = Wakeups()
        self.body = {"metadata": {"generation": 1}}
        self.outcomes = list(outcomes)
        self.passes: list[tuple[float, int]] = []  # (time, generation reconciled)

    def change_spec(self) -> None:
        """What kopf's event handler does when the user edits the spec."""
        self.body["metadata"]["generation"] += 1
        self.wakeups.object_changed(self.body["metadata"]["generation"])

    def times(self) -> list[float]:
        return [when for when, _ in self.passes]

    async def _reconcile(self, view: dict) -> Pass:
        self.passes.append((self.clock.now, view["metadata"]["generation"]))
        if not self.outcomes:
            return Pass(retry=False, gone=True)
        outcome = self.outcomes.pop(0)
        return outcome() if callable(outcome) else outcome

    def run(self, schedule: Schedule | None = None) -> Loop:
        schedule = schedule or Schedule(RESYNC, CAP, jitter=lambda: 1.0)
        snapshot = lambda: {"metadata": dict(self.body["metadata"])}
        asyncio.run(run(self.wakeups, schedule, snapshot, self._reconcile, self.clock))
        return self


def test_failures_back_off_doubling_up_to_the_cap_then_success_resyncs():
    loop = Loop(RETRY, RETRY, RETRY, RETRY, RETRY, OK).run()
    assert loop.times() == [0, 2, 6, 14, 22, 30, 90]


def test_a_pass_that_crashed_is_retried_with_the_same_back_off():
    assert Loop(FAILED, FAILED, OK).run().times() == [0, 2, 6, 66]


def test_resync_is_spread_by_ten_percent():
    schedule = Schedule(RESYNC, CAP, jitter=resync_jitter)
    delays = [schedule.next_delay(retry=False) for _ in range(200)]
    assert all(0.9 * RESYNC <= d <= 1.1 * RESYNC for d in delays)
    assert max(delays) - min(delays) > 0.1 * RESYNC  # objects created together do not resync together


def test_a_spec_change_wakes_the_loop_and_restarts_the_back_off():
    loop = Loop(RETRY, RETRY, RETRY, RETRY, RETRY, OK)
    loop.clock.at(10, loop.change_spec)  # while it waits 8 s after the pass at 6
    loop.run()
    assert loop.times() == [0, 2, 6, 10, 12, 16, 76]
    assert [generation for _, generation in loop.passes] == [1, 1, 1, 2, 2, 2, 2]


def test_events_of_the_same_generation_do_not_wake():
    loop = Loop(OK)
    loop.clock.at(5, lambda: loop.wakeups.object_changed(1))  # the echo of our own status write
    assert loop.run().times() == [0, 60]


def test_a_spec_change_during_a_pass_is_not_lost():
    loop = Loop()

    def edited_meanwhile() -> Pass:
        loop.change_spec()
        return OK

    loop.outcomes = [edited_meanwhile, OK]
    loop.run()
    assert loop.passes == [(0, 1), (0, 2), (60, 2)]


def test_a_changed_report_about_the_function_wakes_and_the_same_report_does_not():
    loop = Loop(Pass(retry=False, observed="starting"), Pass(retry=False, observed="deployed"))
    loop.clock.at(5, lambda: loop.wakeups.child_reported("deployed"))
    loop.clock.at(20, lambda: loop.wakeups.child_reported("deployed"))  # nothing new since the pass at 5
    assert loop.run().times() == [0, 5, 65]


def test_the_echo_of_the_pass_own_apply_is_dropped():
    loop = Loop()

    def applied() -> Pass:
        loop.wakeups.child_reported("applied")  # the watch event of this pass's own apply, arriving mid-pass
        return Pass(retry=False, observed="applied")

    loop.outcomes = [applied]
    assert loop.run().times() == [0, 60]


def test_a_report_newer_than_what_the_pass_saw_wakes_at_once():
    loop = Loop()

    def overtaken() -> Pass:
        loop.wakeups.child_reported("deployed")  # OpenFaaS moved on while the pass still saw it starting
        return Pass(retry=False, observed="starting")

    loop.outcomes = [overtaken, Pass(retry=False, observed="deployed")]
    assert loop.run().times() == [0, 0, 60]


def test_a_failed_pass_keeps_what_the_last_finished_pass_saw():
    loop = Loop(Pass(retry=False, observed="deployed"), FAILED, Pass(retry=False, observed="deployed"))
    loop.clock.at(61, lambda: loop.wakeups.child_reported("deployed"))  # the same as the pass at 0 saw
    assert loop.run().times() == [0, 60, 62, 122]


def test_the_loop_ends_when_the_object_is_gone():
    loop = Loop(Pass(retry=False, gone=True))
    loop.clock.at(1, loop.change_spec)
    assert loop.run().times() == [0]
