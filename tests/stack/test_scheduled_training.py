"""Scheduled retraining in the local stack (issue 17, "done when"): a train MLFunction with a schedule of every
minute is run by the gateway's cron-connector on the next minute, in real time (UTC), with no credential; the run
trains a model version, and `kubectl describe mlf` shows it: status.training (last run, its result, the next
run) and a ScheduledRunSucceeded Event. The stack is conftest.py's, as test_stack_e2e.py's.

It waits for the next whole minute, so it takes up to a minute more than the training itself."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import yaml
from kubernetes import client
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_train_function_on_a_schedule_of_every_minute_runs_and_says_so(stack, k8s, namespace, tmp_path):
    manifest = tmp_path / "retrain.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction",
        "metadata": {"name": "iris-retrain", "namespace": namespace},
        "spec": {"task": "train", "model": {"name": "iris"},
                 "training": {"dataset": "iris", "estimator": "LogisticRegression", "params": {"max_iter": 300},
                              "schedule": "* * * * *"},
                 "scaling": {"minReplicas": 1, "maxReplicas": 1}}}))
    [mlf] = stack.apply([manifest])
    ready = stack.wait_ready(mlf)
    training = ready["status"]["training"]
    assert (training["schedule"], training["timeZone"]) == ("* * * * *", "UTC")
    upcoming = _time(training["nextScheduleTime"])
    assert upcoming.second == 0 and upcoming.utcoffset() == timedelta(0)
    assert ready["status"]["model"].get("version") is None  # nobody has trained it: only the schedule will

    objects = client.CustomObjectsApi(k8s)

    def ran() -> dict | None:
        obj = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", "iris-retrain")
        status = obj.get("status") or {}
        return obj if (status.get("training") or {}).get("lastRun") and (status.get("model") or {}).get("version") \
            else None

    # The next whole minute, the training (a first virtualenv is built by the ready wait already), the record.
    done = wait_for(ran, timeout=150, what="the scheduled run in status.training and the model it trained")
    training = done["status"]["training"]
    run = training["lastRun"]
    assert run["result"] == "Succeeded" and run["statusCode"] == 200, run
    scheduled = _time(training["lastScheduleTime"])
    assert scheduled == _time(run["scheduleTime"]) and scheduled.second == 0
    assert scheduled >= upcoming - timedelta(minutes=1)  # not a run from before the function was seen
    assert _time(run["startTime"]) >= scheduled and run["durationSeconds"] > 0
    assert training["lastSuccessfulTime"] == training["lastScheduleTime"]
    assert _time(training["nextScheduleTime"]) == scheduled + timedelta(minutes=1)
    assert done["status"]["model"]["version"] >= 1

    # What kubectl shows a user.
    event = wait_for(lambda: next((e for e in client.CoreV1Api(k8s).list_namespaced_event(namespace).items
                                   if e.involved_object.name == "iris-retrain"
                                   and e.reason == "ScheduledRunSucceeded"), None),
                     timeout=30, what="the ScheduledRunSucceeded Event")
    assert run["scheduleTime"] in event.message and event.type == "Normal"
    described = stack.kubectl("describe", "mlf", "iris-retrain", "-n", namespace)
    for text in ("Last Schedule Time", "Next Schedule Time", "Succeeded", "ScheduledRunSucceeded"):
        assert text in described, f"{text!r} not in kubectl describe:\n{described}"
    wide = stack.kubectl("get", "mlf", "iris-retrain", "-n", namespace, "-o", "wide")
    assert "LAST RUN" in wide and "Succeeded" in wide, wide
