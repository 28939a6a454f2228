"""The gateway's /metrics (OpenFaaS's names and labels) and /system/metrics-targets (Prometheus HTTP service
discovery), read over real sockets from a real gateway running real replica processes, parsed with
prometheus_client's own parser."""

from __future__ import annotations

import pytest
import requests
from local_support import deploy, metrics
from mlfunctions_harness.processes import pid_alive, wait_for
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.server
ECHO = 'function_name="echo.openfaas-fn"'


def families(gw) -> dict:
    response = requests.get(f"{gw.url}/metrics", timeout=10)
    response.raise_for_status()
    assert response.headers["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def targets(gw) -> list[dict]:
    response = requests.get(f"{gw.url}/system/metrics-targets", auth=gw.basic_auth, timeout=10)
    response.raise_for_status()
    return response.json()


def test_invocations_are_counted_by_code_with_latency_histograms(gateway):
    assert deploy(gateway, "echo").status_code == 202
    wait_for(lambda: metrics(gateway).get(f"gateway_service_count{{{ECHO}}}") == 1, what="a ready replica")
    for status in (200, 200, 200, 400, 503):
        assert requests.get(f"{gateway.url}/function/echo?status={status}", timeout=30).status_code == status
    assert requests.get(f"{gateway.url}/function/nothing-here", timeout=30).status_code == 404

    samples = metrics(gateway)
    for code, count in (("200", 3), ("400", 1), ("503", 1)):
        assert samples[f'gateway_function_invocation_total{{code="{code}",{ECHO}}}'] == count
        assert samples[f'gateway_functions_seconds_count{{code="{code}",{ECHO}}}'] == count
        assert samples[f'gateway_functions_seconds_bucket{{code="{code}",{ECHO},le="+Inf"}}'] == count
    assert samples[f"gateway_function_invocation_started{{{ECHO}}}"] == 5
    # An unknown function is not a label: arbitrary names would grow the series without bound.
    assert not [k for k in samples if "nothing-here" in k]
    # The replica was ready before the first call: nobody waited for one.
    assert samples.get(f"local_openfaas_cold_starts_total{{{ECHO}}}", 0) == 0
    parsed = families(gateway)
    assert parsed["gateway_functions_seconds"].type == "histogram"
    assert parsed["gateway_function_invocation"].type == "counter"
    assert parsed["gateway_service_count"].type == "gauge"


def test_a_request_that_scales_from_zero_is_one_cold_start(gateway):
    labels = {"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "10m"}
    assert deploy(gateway, "echo", labels=labels).status_code == 202
    pid = requests.get(f"{gateway.url}/function/echo", timeout=30).json()["pid"]
    before = metrics(gateway).get(f"local_openfaas_cold_starts_total{{{ECHO}}}", 0)
    scaled = requests.post(f"{gateway.url}/system/scale-function/echo", json={"serviceName": "echo", "replicas": 0},
                           auth=gateway.basic_auth, timeout=5)
    assert scaled.status_code == 202
    wait_for(lambda: not pid_alive(pid), what="the replica to stop")
    wait_for(lambda: metrics(gateway)[f"gateway_service_count{{{ECHO}}}"] == 0, what="no ready replica")
    assert targets(gateway) == []

    assert requests.get(f"{gateway.url}/function/echo", timeout=30).status_code == 200
    samples = metrics(gateway)
    assert samples[f"local_openfaas_cold_starts_total{{{ECHO}}}"] == before + 1
    assert samples[f"local_openfaas_cold_start_seconds_count{{{ECHO}}}"] == before + 1
    assert samples[f"local_openfaas_cold_start_seconds_sum{{{ECHO}}}"] > 0
    assert samples[f"local_openfaas_replica_starts_total{{{ECHO}}}"] == 2
    # A warm call afterwards is not a cold start.
    assert requests.get(f"{gateway.url}/function/echo", timeout=30).status_code == 200
    assert metrics(gateway)[f"local_openfaas_cold_starts_total{{{ECHO}}}"] == before + 1


def test_metrics_targets_lists_every_ready_replica_for_prometheus(gateway):
    assert requests.get(f"{gateway.url}/system/metrics-targets", timeout=5).status_code == 401  # /system is guarded
    assert deploy(gateway, "echo", labels={"com.openfaas.scale.min": "2"}).status_code == 202
    wait_for(lambda: len(targets(gateway)) == 2, what="two ready replicas listed")
    groups = targets(gateway)
    for group in groups:
        assert group["labels"] == {"function_name": "echo.openfaas-fn", "__metrics_path__": "/_/metrics"}
        [target] = group["targets"]
        host, _, port = target.rpartition(":")
        assert host == "127.0.0.1"
        # The target is the replica itself, on its own port.
        assert requests.get(f"http://{target}/_/health", timeout=5).status_code == 200
    assert len({g["targets"][0] for g in groups}) == 2
