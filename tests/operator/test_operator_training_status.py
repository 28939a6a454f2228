"""A scheduled train function's status.training and its Events (builders/training_status.py, pure): from the
cron-connector's record on the Function, or without one (OpenFaaS's own connector writes none) from the schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from mlfunctions_operator.api import FunctionRef, MLFunctionSpec
from mlfunctions_operator.builders.mlfunction_status import build_mlfunction_status
from mlfunctions_operator.builders.status import Verdict, observe_function, status_patch
from mlfunctions_operator.builders.training_status import RECORD_ANNOTATION, build_training_status, run_event

NOW = datetime(2026, 12, 2, 3, 0, 30, tzinfo=UTC)


def train(schedule: str | None = "*/5 * * * *") -> MLFunctionSpec:
    training = {"dataset": "iris", "estimator": "SVC", **({"schedule": schedule} if schedule else {})}
    return MLFunctionSpec.model_validate({"task": "train", "model": {"name": "iris"}, "training": training})


def function(record: dict | None) -> dict:
    annotations = {RECORD_ANNOTATION: json.dumps(record)} if record is not None else {}
    return {"metadata": {"name": "f", "generation": 1, "annotations": annotations}, "spec": {}}


def run(schedule_time: str, succeeded: bool = True, code: int | None = 200, message: str = "") -> dict:
    return {"scheduleTime": schedule_time, "startTime": schedule_time.replace("Z", ".004Z"), "succeeded": succeeded,
            "statusCode": code, "durationSeconds": 1.5, "message": message}


def test_without_a_record_the_schedule_and_its_next_time_in_utc():
    status = build_training_status(train(), function(None), None, NOW)
    assert status.model_dump(by_alias=True) == {
        "schedule": "*/5 * * * *", "timeZone": "UTC", "nextScheduleTime": "2026-12-02T03:05:00Z",
        "lastScheduleTime": None, "lastSuccessfulTime": None, "lastRun": None}


def test_the_connectors_record():
    record = {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:05:00Z", "lastRun": run("2026-12-02T03:00:00Z")}
    status = build_training_status(train(), function(record), None, NOW)
    assert (status.last_schedule_time, status.last_successful_time, status.next_schedule_time) == \
        ("2026-12-02T03:00:00Z", "2026-12-02T03:00:00Z", "2026-12-02T03:05:00Z")
    assert status.last_run.model_dump(by_alias=True) == {
        "scheduleTime": "2026-12-02T03:00:00Z", "startTime": "2026-12-02T03:00:00.004Z", "result": "Succeeded",
        "statusCode": 200, "durationSeconds": 1.5, "message": None}


def test_a_failure_keeps_the_last_success():
    previous = build_training_status(train(), function({"schedule": "*/5 * * * *", "nextScheduleTime": "x",
                                                        "lastRun": run("2026-12-02T03:00:00Z")}), None, NOW)
    failed = {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:10:00Z",
              "lastRun": run("2026-12-02T03:05:00Z", False, 500, "boom")}
    status = build_training_status(train(), function(failed), previous.model_dump(by_alias=True), NOW)
    assert (status.last_schedule_time, status.last_successful_time) == ("2026-12-02T03:05:00Z",
                                                                        "2026-12-02T03:00:00Z")
    assert (status.last_run.result, status.last_run.status_code, status.last_run.message) == ("Failed", 500, "boom")


@pytest.mark.parametrize("succeeded", [True, False])
def test_a_restarted_connectors_first_record_keeps_the_last_run(succeeded):
    record = {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:05:00Z",
              "lastRun": run("2026-12-02T03:00:00Z", succeeded, 200 if succeeded else 500)}
    before = build_training_status(train(), function(record), None, NOW).model_dump(by_alias=True)
    fresh = {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:10:00Z"}  # no lastRun yet
    status = build_training_status(train(), function(fresh), before, NOW)
    assert status.last_run.model_dump(by_alias=True) == before["lastRun"]
    assert status.next_schedule_time == "2026-12-02T03:10:00Z"
    assert run_event(before, status) is None  # not a new run


def test_a_record_for_another_schedule_is_not_this_ones():
    record = {"schedule": "0 3 * * *", "nextScheduleTime": "2026-12-03T03:00:00Z", "lastRun": run("2026-12-02T03:00:00Z")}
    status = build_training_status(train("0 4 * * *"), function(record), None, NOW)
    assert status.last_run is None and status.next_schedule_time == "2026-12-02T04:00:00Z"


def test_an_unreadable_record_is_ignored():
    broken = {"metadata": {"annotations": {RECORD_ANNOTATION: "{not json"}}}
    assert build_training_status(train(), broken, None, NOW).last_run is None


def test_no_schedule_no_training_status_and_the_patch_removes_it():
    body = {"metadata": {"generation": 1}, "status": {"training": {"schedule": "*/5 * * * *"}}}
    status = build_mlfunction_status(body, Verdict(ready=True, reason="Deployed", message=""), "2026-12-02T03:00:30Z",
                                     spec=train(None), function=function(None), function_ref=_ref(),
                                     gateway_url="http://gw")
    assert status_patch(status)["training"] is None


def test_the_mlfunction_status_carries_it():
    record = {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:05:00Z", "lastRun": run("2026-12-02T03:00:00Z")}
    status = build_mlfunction_status({"metadata": {"generation": 1}}, Verdict(ready=True, reason="Deployed", message=""),
                                     "2026-12-02T03:00:30Z", spec=train(), function=function(record),
                                     function_ref=_ref(), gateway_url="http://gw")
    assert status_patch(status)["training"]["lastRun"]["result"] == "Succeeded"
    # Without the Function (a pass that failed before reading it) the training status is left as it is.
    status = build_mlfunction_status({"metadata": {"generation": 1}}, Verdict(ready=True, reason="Deployed", message=""),
                                     "2026-12-02T03:00:30Z", spec=train(), function=None, function_ref=_ref(),
                                     gateway_url="http://gw")
    assert "training" not in status_patch(status)


def test_a_new_record_is_news_to_the_reconcile_loop():
    one = function({"schedule": "* * * * *", "nextScheduleTime": "b", "lastRun": run("2026-12-02T03:00:00Z")})
    two = function({"schedule": "* * * * *", "nextScheduleTime": "c", "lastRun": run("2026-12-02T03:01:00Z")})
    assert observe_function(one) != observe_function(two)
    assert observe_function(one) == observe_function(json.loads(json.dumps(one)))


def test_one_event_per_new_run():
    record = {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:05:00Z", "lastRun": run("2026-12-02T03:00:00Z")}
    status = build_training_status(train(), function(record), None, NOW)
    kind, reason, message = run_event(None, status)
    assert (kind, reason) == ("Normal", "ScheduledRunSucceeded")
    assert "2026-12-02T03:00:00Z" in message and "HTTP 200" in message and "2026-12-02T03:05:00Z" in message
    assert run_event(status.model_dump(by_alias=True), status) is None  # already told
    failed = {**record, "lastRun": run("2026-12-02T03:05:00Z", False, None, "no answer from the gateway")}
    after = build_training_status(train(), function(failed), status.model_dump(by_alias=True), NOW)
    kind, reason, message = run_event(status.model_dump(by_alias=True), after)
    assert (kind, reason) == ("Warning", "ScheduledRunFailed") and "no answer" in message
    assert run_event(None, build_training_status(train(), function(None), None, NOW)) is None


def _ref():
    return FunctionRef(name="f", namespace="openfaas-fn")
