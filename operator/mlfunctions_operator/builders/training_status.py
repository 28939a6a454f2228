"""A scheduled train function's status.training, pure: its schedule, the next run, and the last scheduled run as the
cron-connector recorded it on the Function.

The record is the local OpenFaaS's cron-connector's: one annotation on the Function, RECORD_ANNOTATION, holding
JSON (its home: local-openfaas/local_openfaas/cron/record.py; tests/stack/test_scheduled_training.py ties the
two). OpenFaaS's own cron-connector writes none; then status.training has the schedule and the next time, computed
here as the connector computes it (UTC), and no last run.
"""

from __future__ import annotations

import json
from datetime import datetime

from ..api import MLFunctionSpec, TrainingRun, TrainingStatus
from ..api.cron import next_run

RECORD_ANNOTATION = "cron-connector.local-openfaas/runs"


def scheduled_run_record(function: dict | None) -> str | None:
    """The connector's record as the Function carries it (the raw annotation: what a change of it wakes)."""
    return (((function or {}).get("metadata") or {}).get("annotations") or {}).get(RECORD_ANNOTATION)


def _record(function: dict | None, schedule: str) -> dict:
    """The record, if it is about this schedule (one written for an earlier schedule is not)."""
    try:
        record = json.loads(scheduled_run_record(function) or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) and record.get("schedule") == schedule else {}


def _run(raw: object) -> TrainingRun | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("scheduleTime"), str):
        return None
    code = raw.get("statusCode")
    duration = raw.get("durationSeconds")
    return TrainingRun(
        schedule_time=raw["scheduleTime"], start_time=raw.get("startTime") if isinstance(raw.get("startTime"), str)
        else None, result="Succeeded" if raw.get("succeeded") is True else "Failed",
        status_code=code if isinstance(code, int) else None,
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        message=str(raw.get("message") or "") or None)


def _known_run(raw: object) -> TrainingRun | None:
    """status.training.lastRun as the operator wrote it before."""
    try:
        return TrainingRun.model_validate(raw) if isinstance(raw, dict) else None
    except ValueError:
        return None


def build_training_status(spec: MLFunctionSpec, function: dict, previous: dict | None,
                          now: datetime) -> TrainingStatus | None:
    """status.training for `spec` (None: not a train function on a schedule), from the Function as read now and
    the status.training written before (`previous`, which keeps lastSuccessfulTime across failed runs)."""
    if spec.task != "train" or spec.training is None or not spec.training.schedule:
        return None
    schedule = spec.training.schedule
    record = _record(function, schedule)
    previous = previous if previous and previous.get("schedule") == schedule else {}
    # A connector that starts again records the schedule before its first run: the last run stays the one known.
    run = _run(record.get("lastRun")) or _known_run(previous.get("lastRun"))
    last_success = run.schedule_time if run and run.result == "Succeeded" else previous.get("lastSuccessfulTime")
    upcoming = record.get("nextScheduleTime")
    if not isinstance(upcoming, str):
        upcoming = rfc3339(next_run(schedule, now))
    # Every field given, None included: the status is a merge patch, and a field left out would keep its old value.
    return TrainingStatus(schedule=schedule, time_zone="UTC", next_schedule_time=upcoming,
                          last_schedule_time=run.schedule_time if run else previous.get("lastScheduleTime"),
                          last_successful_time=last_success, last_run=run)


def run_event(previous: dict | None, training: TrainingStatus | None) -> tuple[str, str, str] | None:
    """The Event (type, reason, message) for a scheduled run the previous status did not know of, if any."""
    run = training.last_run if training else None
    if run is None:
        return None
    before = (previous or {}).get("lastRun") or {}
    if (before.get("scheduleTime"), before.get("startTime")) == (run.schedule_time, run.start_time):
        return None
    took = f" in {run.duration_seconds:.1f}s" if run.duration_seconds is not None else ""
    answer = f"HTTP {run.status_code}" if run.status_code is not None else "no answer"
    if run.result == "Succeeded":
        message = (f"Scheduled training run of {run.schedule_time} succeeded ({answer}{took}); next run "
                   f"{training.next_schedule_time}")
        return "Normal", "ScheduledRunSucceeded", message
    detail = f": {run.message}" if run.message else ""
    message = (f"Scheduled training run of {run.schedule_time} failed ({answer}{took}){detail}; next run "
               f"{training.next_schedule_time}")
    return "Warning", "ScheduledRunFailed", message


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
