"""The cron-connector in the real gateway process, over real sockets: on by default, it invokes an annotated
function through the gateway on its schedule (the gateway's own invocation counter moves with the connector's
runs), and --no-cron turns it off. On a cluster it writes each run's record onto the Function, with the runtime's
identity, without redeploying the function. The connector's clock runs 60 times faster (a minute a second)."""

from __future__ import annotations

import json

import pytest
import requests
from kubernetes import client
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import rbac
from local_support import ECHO_IMAGE, deploy, invocations, metrics, stop_gateway
from mlfunctions_harness.processes import free_port, wait_for

pytestmark = pytest.mark.server
GROUP, VERSION, PLURAL = "openfaas.com", "v1", "functions"
RECORD = "cron-connector.local-openfaas/runs"
FAST = ["--cron-clock-rate", "60"]
ON_SCHEDULE = {"topic": "cron-function", "schedule": "* * * * *"}


def _start(tmp_path, programs, *extra, **options):
    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[programs], autoscale_interval=0.2,
                               ready_timeout=10.0, extra_args=list(extra), **options)
    return gw


def _runs(gw, name: str) -> float:
    prefix, suffix = 'local_openfaas_cron_runs_total{code="', f'",function_name="{name}"}}'
    return sum(v for k, v in metrics(gw).items() if k.startswith(prefix) and k.endswith(suffix))


def test_an_annotated_function_runs_on_its_schedule_through_the_gateway(tmp_path, echo_programs):
    gw = _start(tmp_path, echo_programs, *FAST)
    try:
        assert deploy(gw, "ticker", annotations=ON_SCHEDULE).status_code == 202
        assert deploy(gw, "plain").status_code == 202
        wait_for(lambda: _runs(gw, "ticker.openfaas-fn") >= 3, timeout=30, what="three scheduled runs")
        samples = metrics(gw)
        assert samples['local_openfaas_cron_runs_total{code="200",function_name="ticker.openfaas-fn"}'] >= 3
        assert samples["local_openfaas_cron_functions"] == 1  # the plain function is not on the schedule
        # Every run went through the gateway's /function route, as OpenFaaS's connector's calls do.
        assert invocations(gw, "ticker.openfaas-fn") >= 3
        assert invocations(gw, "plain.openfaas-fn") == 0
        # Taken off the schedule by an update: no more runs over the next three minutes of its clock.
        assert deploy(gw, "ticker", method="PUT").status_code == 202
        wait_for(lambda: metrics(gw)["local_openfaas_cron_functions"] == 0, timeout=10, what="off the schedule")
        before, passes = _runs(gw, "ticker.openfaas-fn"), metrics(gw)["local_openfaas_cron_passes_total"]
        wait_for(lambda: metrics(gw)["local_openfaas_cron_passes_total"] >= passes + 4, timeout=10,
                 what="four connector passes (over three minutes of its clock)")
        assert _runs(gw, "ticker.openfaas-fn") == before
    finally:
        stop_gateway(gw)


def test_no_cron_turns_it_off(tmp_path, echo_programs):
    gw = _start(tmp_path, echo_programs, "--no-cron", *FAST)
    try:
        assert deploy(gw, "ticker", annotations=ON_SCHEDULE).status_code == 202
        wait_for(lambda: requests.get(f"{gw.url}/function/ticker", timeout=10).status_code == 200, timeout=30,
                 what="the function to answer")
        assert not [k for k in metrics(gw) if k.startswith("local_openfaas_cron")]
        assert invocations(gw, "ticker.openfaas-fn") == 1  # only the test's own call
    finally:
        stop_gateway(gw)


def _get(k8s, namespace, name) -> dict:
    return client.CustomObjectsApi(k8s).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def _record(k8s, namespace, name) -> dict | None:
    raw = (_get(k8s, namespace, name)["metadata"].get("annotations") or {}).get(RECORD)
    return json.loads(raw) if raw else None


def test_on_a_cluster_each_run_is_recorded_on_the_function(control_plane, k8s, install_crds, namespace, tmp_path,
                                                           echo_programs):
    install_crds("hack/crds/openfaas.com_functions.yaml")
    rbac.ensure_identity(k8s, namespace, "runtime")
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "runtime", tmp_path / "runtime.kubeconfig")
    gw = _start(tmp_path, echo_programs, "--watch-namespace", namespace, "--namespace", namespace, *FAST,
                kubeconfig=kubeconfig)
    objects = client.CustomObjectsApi(k8s)
    try:
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Function", "metadata": {"name": "ticker"},
            "spec": {"name": "ticker", "image": ECHO_IMAGE, "annotations": ON_SCHEDULE}})
        first = wait_for(lambda: (r := _record(k8s, namespace, "ticker")) and "lastRun" in r and r, timeout=30,
                         what="a run record on the Function")
        run = first["lastRun"]
        assert first["schedule"] == "* * * * *"
        assert (run["succeeded"], run["statusCode"], run["message"]) == (True, 200, "")
        assert run["scheduleTime"].endswith(":00Z") and first["nextScheduleTime"].endswith(":00Z")
        assert first["nextScheduleTime"] > run["scheduleTime"]
        later = wait_for(lambda: (r := _record(k8s, namespace, "ticker")) and
                         r["lastRun"]["scheduleTime"] > run["scheduleTime"] and r, timeout=30, what="a later run")
        assert later["lastRun"]["succeeded"]
        # Writing the record is no change of the function: same generation, the one replica it started.
        function = _get(k8s, namespace, "ticker")
        assert function["metadata"]["generation"] == 1
        assert metrics(gw)[f'local_openfaas_replica_starts_total{{function_name="ticker.{namespace}"}}'] == 1
        # Off the schedule: the record is taken off the Function.
        objects.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "ticker",
                                               {"spec": {"annotations": {"topic": None, "schedule": None}}})
        wait_for(lambda: _record(k8s, namespace, "ticker") is None, timeout=30, what="the record taken off")
    finally:
        stop_gateway(gw)
