"""MLFUNCTIONS_METRICS_ADDRESS apart from the health address, on a real operator process (its ServiceAccount under
the chart's RBAC): /metrics answers on the metrics address and only there, /healthz on the health address
(kopf's liveness server then) and only there."""

from __future__ import annotations

import pytest
import requests
from mlfunctions_harness.operator_process import OperatorProcess
from mlfunctions_harness.processes import free_port, wait_for
from operator_cluster import DEFAULT_STORE
from prometheus_client.parser import text_string_to_metric_families


def answer(url: str) -> int | None:
    """The status code of GET `url`, or None when nothing listens there."""
    try:
        return requests.get(url, timeout=5).status_code
    except requests.ConnectionError:
        return None


def scrape(url: str) -> str | None:
    """The metrics text at `url` once it answers 200."""
    try:
        response = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None
    return response.text if response.status_code == 200 else None


@pytest.mark.integration
def test_metrics_on_their_own_address(control_plane, operator_identity, tmp_path):
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}"
    env = {"MLFUNCTIONS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}", "MLFUNCTIONS_LOG_FORMAT": "text",
           "MLFUNCTIONS_DEFAULT_MODEL_STORE": DEFAULT_STORE}
    with OperatorProcess(control_plane, operator_identity, env=env, log_path=tmp_path / "operator.log") as operator:
        health = f"http://127.0.0.1:{operator.health_port}"
        assert operator.health_port != metrics_port
        # The metrics server starts in kopf's startup handler, after the liveness server may already answer.
        text = wait_for(lambda: scrape(f"{metrics}/metrics"), timeout=30, what="/metrics on its own address")
        names = {family.name for family in text_string_to_metric_families(text)}
        assert {"controller_runtime_reconcile", "workqueue_depth", "controller_runtime_max_concurrent_reconciles"} \
            <= names, sorted(names)
        assert requests.get(f"{metrics}/metrics", timeout=5).headers["Content-Type"].startswith("text/plain")
        assert answer(f"{health}/healthz") == 200
        # Each path only where it belongs: kopf's liveness server knows only /healthz, the metrics server (not
        # on the health address) only /metrics.
        assert answer(f"{health}/metrics") == 404
        assert answer(f"{metrics}/healthz") == 404
        assert operator.process.poll() is None, operator.log_tail()
    # Both servers go with the process.
    assert answer(f"{metrics}/metrics") is None and answer(f"{health}/healthz") is None
