"""A scheduled train function's runs, as the operator (its own ServiceAccount, the chart's RBAC) surfaces them: the
local cron-connector's record on the Function (written here with the connector's own RunRecord, as the gateway
would write it; no gateway runs in this suite) becomes status.training and one Event per run; a record for an
earlier schedule does not count, and the operator's applies leave the annotation alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client
from local_openfaas.cron.record import RECORD_ANNOTATION, Run, RunRecord
from operator_cluster import FUNCTION_NAMESPACE, STORE, fn_name

pytestmark = pytest.mark.integration


def _record(objects, name: str, record: RunRecord) -> None:
    objects.custom.patch_namespaced_custom_object(
        "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions", name,
        {"metadata": {"annotations": {RECORD_ANNOTATION: record.to_annotation()}}})


def _events(k8s, namespace: str, reason: str) -> list:
    return [e for e in client.CoreV1Api(k8s).list_namespaced_event(namespace).items
            if e.involved_object.name == "nightly" and e.reason == reason]


def _training(objects, namespace: str) -> dict:
    return ((objects.mlf(namespace, "nightly") or {}).get("status") or {}).get("training") or {}


def test_runs_become_status_training_and_events(objects, k8s, namespace):
    training = {"dataset": "iris", "estimator": "SVC", "schedule": "0 3 * * *"}
    objects.create_mlf(namespace, "nightly", {"task": "train", "model": {"name": f"n-{namespace}"},
                                              "modelStore": STORE, "training": training})
    name = fn_name(namespace, "nightly")
    objects.wait(lambda: objects.function(name), what="the Function")
    objects.report_function_status(name, ready=True, replicas=1, available=1)
    before = objects.wait(lambda: (t := _training(objects, namespace)) and t, what="status.training")
    # No connector has said anything: the schedule and its next time, computed in UTC.
    assert (before["schedule"], before["timeZone"]) == ("0 3 * * *", "UTC")
    assert before["nextScheduleTime"].endswith("T03:00:00Z") and "lastRun" not in before

    day = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    failed = Run(day, day, 500, 2.5, "unknown parameter max_depht")
    _record(objects, name, RunRecord("0 3 * * *", datetime(2026, 12, 3, 3, 0, tzinfo=UTC), failed))
    status = objects.wait(lambda: (t := _training(objects, namespace)).get("lastRun") and t, what="the failed run")
    assert status["lastRun"]["result"] == "Failed" and status["lastRun"]["statusCode"] == 500
    assert status["lastRun"]["message"] == "unknown parameter max_depht"
    assert (status["lastScheduleTime"], status["nextScheduleTime"]) == ("2026-12-02T03:00:00Z", "2026-12-03T03:00:00Z")
    assert "lastSuccessfulTime" not in status
    warning = objects.wait(lambda: _events(k8s, namespace, "ScheduledRunFailed"), what="the Warning Event")
    assert warning[0].type == "Warning" and "max_depht" in warning[0].message

    next_day = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    _record(objects, name, RunRecord("0 3 * * *", datetime(2026, 12, 4, 3, 0, tzinfo=UTC),
                                     Run(next_day, next_day, 200, 1.5)))
    status = objects.wait(lambda: (t := _training(objects, namespace)).get("lastRun", {}).get("result") ==
                          "Succeeded" and t, what="the successful run")
    assert status["lastSuccessfulTime"] == "2026-12-03T03:00:00Z" and "message" not in status["lastRun"]
    objects.wait(lambda: _events(k8s, namespace, "ScheduledRunSucceeded"), what="the Normal Event")
    assert len(_events(k8s, namespace, "ScheduledRunFailed")) == 1, "one Event per run, not one per pass"

    # A new schedule: the operator applies the Function again and leaves the connector's annotation; the record,
    # about the old schedule, no longer counts.
    objects.patch_mlf(namespace, "nightly", {"spec": {"training": {"schedule": "30 4 * * *"}}})
    status = objects.wait(lambda: (t := _training(objects, namespace)).get("schedule") == "30 4 * * *" and t,
                          what="status.training for the new schedule")
    assert "lastRun" not in status and status["nextScheduleTime"].endswith("T04:30:00Z")
    function = objects.function(name)
    assert function["spec"]["annotations"]["schedule"] == "30 4 * * *"
    assert RECORD_ANNOTATION in function["metadata"]["annotations"]
    # No schedule: no status.training.
    objects.patch_mlf(namespace, "nightly", {"spec": {"training": {"schedule": None}}})
    objects.wait(lambda: "training" not in (objects.mlf(namespace, "nightly").get("status") or {}),
                 what="status.training gone with the schedule")
