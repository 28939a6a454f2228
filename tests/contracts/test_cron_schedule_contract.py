"""spec.training.schedule: the grammar of OpenFaaS's cron-connector (robfig/cron v3's standard parser). Its home:
operator/mlfunctions_operator/api/cron.py (CRON_SCHEDULE, one expression for the CRD's CEL rule and the pydantic
model). Its copies: the local cron-connector's parser (local-openfaas/local_openfaas/cron/schedule.py, cronsim)
and the operator's own cronsim check. These tests fail when the real API server admits a schedule the connector
cannot run, refuses one it can, or refuses without naming the field."""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas.cron.schedule import InvalidSchedule, parse
from mlfunctions_operator import GROUP, VERSION
from mlfunctions_operator.api import MLFunctionSpec
from mlfunctions_operator.api.cron import CRON_MESSAGE, is_cron_schedule
from pydantic import ValidationError

pytestmark = pytest.mark.integration

RUNS = ["* * * * *", "0 3 * * *", "*/5 * * * *", "0,30 9-17 * * MON-FRI", "0 3 ? * *", "0 3 1 jan *",
        "15 2 1-31/2 1-12 0-7", "00 03 * * 7", "  0 3 * * *  ", "0  3 * * *", "@daily", "@hourly", "@weekly",
        "@monthly", "@yearly", "@annually", "@midnight", "59 23 31 12 6"]
REFUSED = ["61 * * * *", "every day", "* * * *", "* * * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *",
           "0 0 * * 8", "*/0 * * * *", "@every 1h", "@reboot", "0 3 L * *", "0 3 * * 1#2", "0 3 15W * *",
           "CRON_TZ=UTC 0 3 * * *", "0 3 * * MONDAY", "-1 * * * *", "0 3 * * *;", "0 3 * * *\nrm -rf"]
# The API server's rule is a regular expression: a range that runs backwards passes it, and the operator (pydantic
# with cronsim) and the connector refuse it (Stalled, InvalidSpec, naming spec.training.schedule).
BACKWARDS = ["5-2 * * * *", "0 3 * * FRI-MON"]


def _connector_runs(schedule: str) -> bool:
    try:
        parse(schedule)
    except InvalidSchedule:
        return False
    return True


def _operator_accepts(schedule: str) -> bool:
    try:
        MLFunctionSpec.model_validate({"task": "train", "model": {"name": "iris"},
                                       "training": {"dataset": "iris", "estimator": "SVC", "schedule": schedule}})
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def dry_run(k8s: client.ApiClient, install_crds):
    """dry_run(schedule) -> None if the API server admits a train MLFunction with it, else its message."""
    install_crds("crds")
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    namespace = f"t-cron-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    def create(schedule: str) -> str | None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": "nightly"},
                "spec": {"task": "train", "model": {"name": "iris"},
                         "training": {"dataset": "iris", "estimator": "SVC", "schedule": schedule}}}
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", body, dry_run="All")
        except ApiException as error:
            assert error.status == 422, error.body
            return json.loads(error.body)["message"]
        return None

    yield create
    core.delete_namespace(namespace)


@pytest.mark.parametrize("schedule", RUNS)
def test_what_the_connector_runs_is_admitted(dry_run, schedule):
    assert _connector_runs(schedule) and _operator_accepts(schedule) and is_cron_schedule(schedule)
    assert dry_run(schedule) is None


@pytest.mark.parametrize("schedule", REFUSED)
def test_what_the_connector_cannot_run_is_refused_naming_the_field(dry_run, schedule):
    assert not _connector_runs(schedule) and not _operator_accepts(schedule)
    message = dry_run(schedule)
    assert message is not None, f"the API server admitted {schedule!r}"
    assert "spec.training.schedule" in message and CRON_MESSAGE.split(":")[0] in message, message


@pytest.mark.parametrize("schedule", BACKWARDS)
def test_a_backwards_range_is_admitted_then_refused_by_the_operator_and_the_connector(dry_run, schedule):
    assert dry_run(schedule) is None
    assert not _operator_accepts(schedule) and not _connector_runs(schedule)
