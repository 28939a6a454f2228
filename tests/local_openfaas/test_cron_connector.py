"""The cron-connector's scheduling loop (local_openfaas/cron/connector.py), the real one, on a clock that runs 600
times faster (a schedule of every minute fires every 0.1 s), calling a real HTTP server on 127.0.0.1 where the
gateway would be: what it sends, when, and how it follows functions that appear, change and go."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from local_openfaas.cron.clock import FastClock
from local_openfaas.cron.connector import CronConnector, Recorder
from local_openfaas.cron.record import RunRecord
from local_openfaas.cron.schedule import CronFunction
from local_openfaas.runtime.spec import FunctionSpec
from mlfunctions_harness.processes import free_port

pytestmark = pytest.mark.server
RATE = 600.0
DEADLINE = 10.0  # real seconds


def spec(name: str, schedule: str = "* * * * *", **annotations: str) -> FunctionSpec:
    return FunctionSpec(name=name, namespace="fn", image="x",
                        annotations={"topic": "cron-function", "schedule": schedule, **annotations})


class Gateway:
    """Where the gateway would be: answers each call with the status the test sets, and remembers the calls."""

    def __init__(self):
        self.calls: list[dict] = []
        self.status = 200
        self.hold = asyncio.Event()
        self.hold.set()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append({"method": request.method, "path": request.path, "body": await request.read(),
                           "authorization": request.headers.get("Authorization"), "at": asyncio.get_running_loop().time()})
        await self.hold.wait()
        return web.Response(status=self.status, text="" if self.status < 300 else "the function failed")


class Records(Recorder):
    def __init__(self):
        self.written: list[tuple[str, RunRecord]] = []
        self.forgotten: list[str] = []

    async def record(self, function: CronFunction, record: RunRecord) -> None:
        self.written.append((function.qualified, record))

    async def forget(self, function: CronFunction) -> None:
        self.forgotten.append(function.qualified)


async def until(check, what: str, timeout: float = DEADLINE):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
    return result


def run(scenario):
    async def main():
        gateway, records = Gateway(), Records()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", gateway.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        functions: list[FunctionSpec] = []
        connector = CronConnector(lambda: functions, f"http://127.0.0.1:{port}", clock=FastClock(RATE),
                                  recorder=records, probe_seconds=0.02)
        await connector.start()
        try:
            await scenario(connector, functions, gateway, records)
        finally:
            gateway.hold.set()
            await connector.close()
            await runner.cleanup()

    asyncio.run(main())


def test_invokes_like_the_cron_connector_on_every_scheduled_minute():
    async def scenario(connector, functions, gateway, records):
        functions.append(spec("train"))
        functions.append(spec("queued", **{"async": "true"}))
        await until(lambda: len([c for c in gateway.calls if c["path"] == "/function/train.fn"]) >= 3,
                    "three scheduled calls")
        sync = [c for c in gateway.calls if c["path"] == "/function/train.fn"]
        assert {(c["method"], c["body"], c["authorization"]) for c in sync} == {("POST", b"", None)}
        assert any(c["path"] == "/async-function/queued.fn" for c in gateway.calls)
        # One call per minute of the clock (0.1 s on the wall clock): over 3 calls, at least 0.1 s, and not
        # much more than 0.3 s (a pass that comes late runs the minute late, it does not add one).
        assert 0.1 <= sync[2]["at"] - sync[0]["at"] < 1.0, [c["at"] for c in sync]
        # Every run is recorded with its scheduled minute, its outcome and the next minute.
        await until(lambda: [r for n, r in records.written if n == "train.fn" and r.last_run], "a run record")
        first = next(r for n, r in records.written if n == "train.fn")
        assert first.last_run is None and first.next_schedule_time.second == 0  # scheduled, not run yet
        runs = [r for n, r in records.written if n == "train.fn" and r.last_run]
        minutes = [r.last_run.schedule_time for r in runs]
        assert minutes == sorted(set(minutes)), "a scheduled minute ran twice, or out of order"
        for record in runs:
            run = record.last_run
            assert run.succeeded and run.status_code == 200 and run.message == ""
            assert run.schedule_time.second == 0 and run.schedule_time.microsecond == 0
            assert record.next_schedule_time == run.schedule_time + timedelta(minutes=1)
            assert run.start_time >= run.schedule_time
        assert connector.counts.runs[("train.fn", "200")] >= 3

    run(scenario)


def test_a_failed_run_is_recorded_with_its_answer():
    async def scenario(connector, functions, gateway, records):
        gateway.status = 500
        functions.append(spec("train"))
        record = await until(lambda: next((r for _, r in records.written if r.last_run), None), "a run record")
        assert not record.last_run.succeeded and record.last_run.status_code == 500
        assert record.last_run.message == "the function failed"

    run(scenario)


def test_no_answer_is_a_failed_run():
    async def scenario(connector, functions, gateway, records):
        connector.gateway_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        functions.append(spec("train"))
        record = await until(lambda: next((r for _, r in records.written if r.last_run), None), "a run record")
        assert record.last_run.status_code is None and not record.last_run.succeeded
        assert "no answer from the gateway" in record.last_run.message
        assert connector.counts.runs[("train.fn", "none")] >= 1

    run(scenario)


def test_follows_changes_and_deletes():
    async def scenario(connector, functions, gateway, records):
        functions.append(spec("train"))
        await until(lambda: gateway.calls, "a first call")
        # A schedule that cannot run: the function leaves the schedule (as OpenFaaS's connector leaves it out).
        functions[0] = spec("train", "61 * * * *")
        await until(lambda: not connector.entries, "the function off the schedule")
        calls, minute = len(gateway.calls), connector.clock.now()
        passes = connector.counts.passes
        await until(lambda: connector.clock.now() - minute > timedelta(minutes=3) and
                    connector.counts.passes > passes + 3, "three minutes of the clock")
        assert len(gateway.calls) == calls, "a function off the schedule was still invoked"
        assert records.forgotten == ["train.fn"]  # its record taken off
        # Back on a schedule (once an hour), then deleted.
        functions[0] = spec("train", "0 * * * *")
        entry = await until(lambda: connector.entries.get(("fn", "train")), "the function back on the schedule")
        assert entry.next_time.minute == 0 and entry.next_time > connector.clock.now()
        functions.clear()
        await until(lambda: not connector.entries, "the deleted function off the schedule")
        await until(lambda: records.forgotten == ["train.fn", "train.fn"], "its record taken off again")

    run(scenario)


def test_a_run_still_going_skips_the_next_time():
    async def scenario(connector, functions, gateway, records):
        gateway.hold.clear()  # the function does not answer until told
        functions.append(spec("train"))
        await until(lambda: connector.counts.skipped.get("train.fn", 0) >= 2, "two skipped times")
        assert len(gateway.calls) == 1  # one call in flight, none beside it
        gateway.hold.set()
        await until(lambda: len(gateway.calls) >= 2, "the schedule going on after the run")

    run(scenario)


def test_the_first_time_is_the_first_after_the_function_was_seen():
    async def scenario(connector, functions, gateway, records):
        functions.append(spec("hourly", "0 * * * *"))
        entry = await until(lambda: connector.entries.get(("fn", "hourly")), "the function on the schedule")
        now = connector.clock.now()
        assert entry.next_time > now - timedelta(seconds=1)
        assert entry.next_time - now <= timedelta(hours=1)
        assert isinstance(entry.next_time, datetime) and entry.next_time.minute == 0

    run(scenario)
