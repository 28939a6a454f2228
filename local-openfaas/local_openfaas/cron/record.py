"""What the connector says about a function's runs: the last run's outcome and the next time (pure).

On a cluster the record is one annotation on the Function, RECORD_ANNOTATION, its value this JSON (times RFC 3339
UTC; `lastRun` absent until the first run):

    {"schedule": "*/5 * * * *", "nextScheduleTime": "2026-12-02T03:05:00Z",
     "lastRun": {"scheduleTime": "2026-12-02T03:00:00Z", "startTime": "2026-12-02T03:00:00.004Z",
                 "succeeded": true, "statusCode": 200, "durationSeconds": 1.52, "message": ""}}

The mlfunctions operator reads it into the MLFunction's status.training (operator/mlfunctions_operator/builders/
training_status.py keeps the same name and shape; tests/stack/test_scheduled_training.py ties the two).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

RECORD_ANNOTATION = "cron-connector.local-openfaas/runs"
MESSAGE_LIMIT = 512  # of a failed run's answer, in the record and the MLFunction's status


@dataclass(frozen=True)
class Run:
    schedule_time: datetime      # when the schedule said to run
    start_time: datetime         # when the call began (the connector's clock)
    status_code: int | None      # the gateway's answer; None when there was none (refused, reset, timed out)
    duration_seconds: float
    message: str = ""            # why it failed: the answer's start, or the connection error

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class RunRecord:
    schedule: str
    next_schedule_time: datetime
    last_run: Run | None = None

    def to_annotation(self) -> str:
        value: dict = {"schedule": self.schedule, "nextScheduleTime": rfc3339(self.next_schedule_time)}
        if self.last_run:
            run = self.last_run
            value["lastRun"] = {"scheduleTime": rfc3339(run.schedule_time), "startTime": rfc3339(run.start_time, 3),
                                "succeeded": run.succeeded, "statusCode": run.status_code,
                                "durationSeconds": round(run.duration_seconds, 3),
                                "message": run.message[:MESSAGE_LIMIT]}
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def rfc3339(moment: datetime, decimals: int = 0) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if decimals:
        text += f".{moment.microsecond // 10 ** (6 - decimals):0{decimals}d}"
    return text + "Z"
