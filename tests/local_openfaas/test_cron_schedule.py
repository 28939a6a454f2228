"""Which functions the cron-connector runs and when (local_openfaas/cron/schedule.py), as OpenFaaS's connector
reads the annotations and robfig/cron's standard parser reads the schedule; times in UTC."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from local_openfaas.cron.clock import FastClock
from local_openfaas.cron.record import Run, RunRecord
from local_openfaas.cron.schedule import InvalidSchedule, cron_functions, parse
from local_openfaas.runtime.spec import FunctionSpec

AT = datetime(2026, 12, 2, 1, 0, 30, tzinfo=UTC)


def spec(name: str, **annotations: str) -> FunctionSpec:
    return FunctionSpec(name=name, namespace="fn", image="x", annotations=annotations)


@pytest.mark.parametrize("expression,after,expected", [
    ("* * * * *", AT, datetime(2026, 12, 2, 1, 1, tzinfo=UTC)),
    ("* * * * *", datetime(2026, 12, 2, 1, 1, tzinfo=UTC), datetime(2026, 12, 2, 1, 2, tzinfo=UTC)),  # strictly after
    ("*/5 * * * *", AT, datetime(2026, 12, 2, 1, 5, tzinfo=UTC)),
    ("0 3 * * *", AT, datetime(2026, 12, 2, 3, 0, tzinfo=UTC)),
    ("@daily", AT, datetime(2026, 12, 3, 0, 0, tzinfo=UTC)),
    ("@hourly", AT, datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),
    ("@weekly", AT, datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),  # Sunday
    ("0 3 ? * mon", AT, datetime(2026, 12, 7, 3, 0, tzinfo=UTC)),  # robfig's ? and lower-case names
    ("0 3 * * 7", AT, datetime(2026, 12, 6, 3, 0, tzinfo=UTC)),  # 7 is Sunday too
    ("30 9-17/4 * JAN-MAR,DEC *", AT, datetime(2026, 12, 2, 9, 30, tzinfo=UTC)),
    ("0 0 1 1 *", AT, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
])
def test_next_times_are_utc(expression, after, expected):
    assert parse(expression).next_after(after) == expected


def test_a_local_time_is_read_as_the_same_moment():
    # The connector's times are UTC; a moment given in another zone is the same instant.
    paris = timezone(timedelta(hours=1))
    assert parse("0 3 * * *").next_after(datetime(2026, 12, 2, 3, 30, tzinfo=paris)) == \
        datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["61 * * * *", "every day", "* * * *", "* * * * * *", "5-2 * * * *",
                                        "*/0 * * * *", "0 24 * * *", "", "@every 1h",
                                        "0 3 L * *", "0 3 15W * *", "0 3 * * 1#2", "0 3 * * 5L"])
def test_schedules_the_connector_cannot_run_are_refused(expression):
    with pytest.raises(InvalidSchedule):
        parse(expression)


def test_discovery_takes_exactly_the_cron_functions():
    found, refused = cron_functions([
        spec("nightly", topic="cron-function", schedule="0 3 * * *"),
        spec("queued", topic="cron-function", schedule="*/5 * * * *", **{"async": "true"}),
        spec("kafka", topic="payments", schedule="0 3 * * *"),       # another connector's topic
        spec("plain"),                                               # no annotations
        spec("no-schedule", topic="cron-function"),
        spec("bad", topic="cron-function", schedule="61 * * * *"),
    ])
    assert sorted(found) == [("fn", "nightly"), ("fn", "queued")]
    assert not found["fn", "nightly"].asynchronous and found["fn", "queued"].asynchronous
    assert found["fn", "nightly"].qualified == "nightly.fn"
    assert sorted(refused) == [("fn", "bad"), ("fn", "no-schedule")]
    assert "61 * * * *" in refused["fn", "bad"]


def test_a_changed_schedule_is_another_cron_function():
    before, _ = cron_functions([spec("f", topic="cron-function", schedule="0 3 * * *")])
    after, _ = cron_functions([spec("f", topic="cron-function", schedule="0 4 * * *")])
    same, _ = cron_functions([spec("f", topic="cron-function", schedule="0 3 * * *", other="label")])
    assert before != after and before == same


def test_the_record_annotation():
    run = Run(datetime(2026, 12, 2, 3, 0, tzinfo=UTC), datetime(2026, 12, 2, 3, 0, 0, 4000, tzinfo=UTC), 500, 1.23456,
              "x" * 2000)
    text = RunRecord("0 3 * * *", datetime(2026, 12, 3, 3, 0, tzinfo=UTC), run).to_annotation()
    value = json.loads(text)
    assert value["schedule"] == "0 3 * * *" and value["nextScheduleTime"] == "2026-12-03T03:00:00Z"
    assert value["lastRun"]["scheduleTime"] == "2026-12-02T03:00:00Z"
    assert value["lastRun"]["startTime"] == "2026-12-02T03:00:00.004Z"
    assert (value["lastRun"]["succeeded"], value["lastRun"]["statusCode"], value["lastRun"]["durationSeconds"]) == \
        (False, 500, 1.235)
    assert len(value["lastRun"]["message"]) == 512
    assert "lastRun" not in json.loads(RunRecord("0 3 * * *", datetime(2026, 12, 3, tzinfo=UTC)).to_annotation())


def test_a_fast_clock_runs_faster():
    clock = FastClock(600)
    start, began = clock.now(), time.monotonic()
    while time.monotonic() - began < 0.05:
        pass
    elapsed = (clock.now() - start).total_seconds()
    assert 30 <= elapsed <= 600 * (time.monotonic() - began) + 1
    assert clock.real_seconds(60) == 0.1
