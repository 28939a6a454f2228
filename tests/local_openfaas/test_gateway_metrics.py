"""The gateway's /metrics (OpenFaaS's names and labels) and /system/metrics-targets (Prometheus HTTP service
discovery), read over real sockets from a real gateway running real replica processes, parsed with
prometheus_client's own parser."""

from __future__ import annotations

import pytest
import requests
from local_openfaas import funcenv
from local_openfaas.gateway import process as gateway_process
from local_support import deploy, metrics, stop_gateway
from mlfunctions_harness.processes import free_port, pid_alive, wait_for
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.server
ECHO = 'function_name="echo.openfaas-fn"'
STACK_FILE = funcenv.FUNCTIONS_DIR / "stack.yml"


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
    # The parser spells a counter's samples <name>_total inside; on the wire they are OpenFaaS's exact name.
    assert samples[f"gateway_function_invocation_started_total{{{ECHO}}}"] == 5
    # An unknown function is not a label: arbitrary names would grow the series without bound.
    assert not [k for k in samples if "nothing-here" in k]
    # The replica was ready before the first call: nobody waited for one.
    assert samples.get(f"local_openfaas_cold_starts_total{{{ECHO}}}", 0) == 0
    parsed = families(gateway)
    assert parsed["gateway_functions_seconds"].type == "histogram"
    assert parsed["gateway_function_invocation"].type == "counter"
    assert parsed["gateway_service_count"].type == "gauge"
    assert parsed["gateway_function_invocation_started"].type == "counter"


def test_invocation_started_is_a_counter_under_openfaass_exact_name(gateway):
    """OpenFaaS's gateway exposes gateway_function_invocation_started with no _total (dashboards query that
    name); prometheus_client's own counters would be spelled ..._total on the TYPE line and the samples."""
    assert deploy(gateway, "echo").status_code == 202
    wait_for(lambda: metrics(gateway).get(f"gateway_service_count{{{ECHO}}}") == 1, what="a ready replica")
    before = metrics(gateway).get(f"gateway_function_invocation_started_total{{{ECHO}}}", 0)
    for _ in range(2):
        assert requests.get(f"{gateway.url}/function/echo", timeout=30).status_code == 200
    text = requests.get(f"{gateway.url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if "gateway_function_invocation_started" in line]
    assert "# TYPE gateway_function_invocation_started counter" in lines
    samples = [line for line in lines if not line.startswith("#")]
    assert samples == [f"gateway_function_invocation_started{{{ECHO}}} {float(before + 2)!r}"], lines
    assert not [line for line in text.splitlines() if line.startswith("# TYPE ") and "_started_total" in line]


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
        assert port.isdigit()
        assert host == "127.0.0.1"
        # The target is the replica itself, on its own port.
        assert requests.get(f"http://{target}/_/health", timeout=5).status_code == 200
    assert len({g["targets"][0] for g in groups}) == 2


def test_a_discovered_replica_of_the_train_function_serves_its_own_metrics(tmp_path, function_venvs):
    """The real train function behind a real gateway (stack.yml, the pre-warmed pool): the target the gateway
    lists is the replica's /_/metrics, and its counts are the replica's own (nothing inherited from the
    pre-warmed process it came from)."""
    gw = gateway_process.start(free_port(), tmp_path / "gw", stack_files=[STACK_FILE], autoscale_interval=0.2,
                               ready_timeout=60.0)
    try:
        body = {"service": "train", "image": "ghcr.io/mlfunctions/train:0.1.0",
                "envVars": {"MODEL_NAME": "iris", "MODEL_STORE_URL": f"http://127.0.0.1:{free_port()}"}}
        assert requests.post(f"{gw.url}/system/functions", json=body, auth=gw.basic_auth, timeout=30).status_code \
            == 202
        wait_for(lambda: len(targets(gw)) == 1, timeout=120, what="the train replica to be listed")
        [group] = targets(gw)
        assert group["labels"] == {"function_name": "train.openfaas-fn", "__metrics_path__": "/_/metrics"}
        url = f"http://{group['targets'][0]}{group['labels']['__metrics_path__']}"
        refused = requests.post(f"{gw.url}/function/train", json={"estimator": "NoSuchEstimator"}, timeout=60)
        assert refused.status_code == 400
        own = {s.name + str(sorted(s.labels.items())): s.value
               for f in text_string_to_metric_families(requests.get(url, timeout=10).text) for s in f.samples}
        assert own["mlfunctions_function_info[('model', 'iris'), ('task', 'train')]"] == 1
        assert own["http_requests_total[('code', '400'), ('method', 'POST')]"] == 1
        assert own["mlfunctions_trainings_total[('result', 'rejected')]"] == 1
        assert own["mlfunctions_cold_start_seconds[]"] > 0
        gateway_side = metrics(gw)
        assert gateway_side['gateway_function_invocation_total{code="400",function_name="train.openfaas-fn"}'] == 1
    finally:
        stop_gateway(gw)
