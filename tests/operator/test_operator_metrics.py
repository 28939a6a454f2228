"""The operator's /metrics (controller-runtime's names): what the running operator counts as it reconciles real
MLFunctions against the real API server, read with prometheus_client's own parser; and the pure parts."""

from __future__ import annotations

import urllib.request

import pytest
from faulty_store import FaultyStore
from mlfunctions_harness.processes import wait_for
from mlfunctions_operator.metrics import OperatorMetrics, kstatus, result_of
from operator_cluster import GROUP, OPERATOR_NAMESPACE, STORE, VERSION, condition
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

PREDICT = {"task": "predict", "model": {"name": "iris"}, "modelStore": STORE}


def scrape(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample: (name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def operator_metrics(operator) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return scrape(response.read().decode())


def value(samples: dict, metric: str, **labels) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.integration
def test_reconciles_are_counted_timed_and_the_queue_drains(objects, namespace, operator):
    before = operator_metrics(operator)
    ml = {"controller": "mlfunction"}
    queue = {"controller": "mlfunction", "name": "mlfunction"}
    objects.create_mlf(namespace, "counted", PREDICT)
    # its first pass wrote a status (the operator may be reconciling objects other suites left behind too)
    objects.wait(lambda: (objects.mlf(namespace, "counted") or {}).get("status", {}).get("conditions"),
                 what="the first status")
    after = wait_for(lambda: (s := operator_metrics(operator)) and value(
        s, "controller_runtime_reconcile_total", result="success", **ml) > value(
        before, "controller_runtime_reconcile_total", result="success", **ml) and value(
        s, "mlfunctions_operator_objects", kind="MLFunction", status="InProgress") >= 1 and s,
        what="a successful reconcile counted, the object InProgress")
    assert value(after, "controller_runtime_reconcile_time_seconds_count", **ml) > value(
        before, "controller_runtime_reconcile_time_seconds_count", **ml)
    assert value(after, "workqueue_adds_total", **queue) > value(before, "workqueue_adds_total", **queue)
    assert value(after, "workqueue_queue_duration_seconds_count", **queue) > 0
    assert value(after, "workqueue_work_duration_seconds_count", **queue) > 0
    assert value(after, "controller_runtime_max_concurrent_reconciles", **ml) >= 1
    assert ("process_resident_memory_bytes", ()) in after  # prometheus_client's defaults are there too
    # nothing left waiting or running once the object's pass is done
    wait_for(lambda: value(s := operator_metrics(operator), "workqueue_depth", **queue) == 0 and value(
        s, "controller_runtime_active_workers", **ml) == 0 and value(
        s, "workqueue_longest_running_processor_seconds", **queue) == 0, what="the queue to drain")
    objects.delete_mlf(namespace, "counted")
    objects.wait(lambda: objects.mlf(namespace, "counted") is None, what="the MLFunction to go")


@pytest.mark.integration
def test_a_function_whose_store_is_down_counts_errors_and_retries(objects, namespace, operator):
    listener = FaultyStore("drop")
    store = f"down-{namespace}"
    objects.custom.create_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelStore", "metadata": {"name": store},
        "spec": {"external": {"url": listener.url, "adminTokenSecretRef": {"name": "iris-admin"}},
                 "namespaces": [namespace]}})
    try:
        before = operator_metrics(operator)
        objects.create_mlf(namespace, "failing", {**PREDICT, "modelStore": store})
        objects.wait(lambda: condition(objects.mlf(namespace, "failing"), "Reconciling").get("reason") ==
                     "ModelStoreUnavailable", timeout=30, what="the store to be reported unavailable")
        ml = {"controller": "mlfunction"}
        queue = {"controller": "mlfunction", "name": "mlfunction"}
        # the back-off retries (2, 4 s ...): at least two failed passes, the second one a retry
        after = wait_for(lambda: (s := operator_metrics(operator)) and value(
            s, "controller_runtime_reconcile_errors_total", **ml) >= value(
            before, "controller_runtime_reconcile_errors_total", **ml) + 2 and s, timeout=30,
            what="the errors counted")
        assert value(after, "controller_runtime_reconcile_total", result="error", **ml) >= value(
            before, "controller_runtime_reconcile_total", result="error", **ml) + 2
        assert value(after, "workqueue_retries_total", **queue) > value(before, "workqueue_retries_total", **queue)
    finally:
        listener.close()
        objects.delete_mlf(namespace, "failing")
        objects.wait(lambda: objects.mlf(namespace, "failing") is None, timeout=40, what="the MLFunction to go")
        objects.custom.delete_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, "modelstores", store)


def test_the_queue_counts_adds_once_and_times_the_work():
    metrics = OperatorMetrics(workers=4)
    metrics.queued("mlfunction", "a")
    metrics.queued("mlfunction", "a")  # already waiting: not added again
    metrics.queued("mlfunction", "b", retry=True)
    samples = scrape(_text(metrics))
    queue = {"controller": "mlfunction", "name": "mlfunction"}
    assert value(samples, "workqueue_adds_total", **queue) == 2
    assert value(samples, "workqueue_retries_total", **queue) == 1
    assert value(samples, "workqueue_depth", **queue) == 2
    with metrics.working("mlfunction", "a"):
        samples = scrape(_text(metrics))
        assert value(samples, "workqueue_depth", **queue) == 1
        assert value(samples, "controller_runtime_active_workers", controller="mlfunction") == 1
        assert value(samples, "workqueue_longest_running_processor_seconds", **queue) > 0
    samples = scrape(_text(metrics))
    assert value(samples, "controller_runtime_active_workers", controller="mlfunction") == 0
    assert value(samples, "workqueue_work_duration_seconds_count", **queue) == 1
    assert value(samples, "controller_runtime_reconcile_time_seconds_count", controller="mlfunction") == 1
    assert value(samples, "controller_runtime_max_concurrent_reconciles", controller="modelstore") == 4
    metrics.forget("mlfunction", "b")
    assert value(scrape(_text(metrics)), "workqueue_depth", **queue) == 0


def test_objects_are_counted_by_their_latest_kstatus():
    metrics = OperatorMetrics(workers=1)
    metrics.status("mlfunction", "a", kstatus(ready=False, stalled=False))
    metrics.status("mlfunction", "a", kstatus(ready=True, stalled=False))
    metrics.status("mlfunction", "b", kstatus(ready=False, stalled=True))
    metrics.status("modelstore", "s", kstatus(ready=True, stalled=False))
    samples = scrape(_text(metrics))
    assert [value(samples, "mlfunctions_operator_objects", kind="MLFunction", status=status)
            for status in ("Current", "InProgress", "Failed")] == [1, 0, 1]
    metrics.forget("mlfunction", "a")
    assert value(scrape(_text(metrics)), "mlfunctions_operator_objects", kind="MLFunction", status="Current") == 0
    assert value(scrape(_text(metrics)), "mlfunctions_operator_objects", kind="ModelStore", status="Current") == 1


def test_results_errors_and_requeues():
    metrics = OperatorMetrics(workers=1)
    for retry in (True, True, False):
        metrics.reconciled("modelstore", result_of(retry))
    samples = scrape(_text(metrics))
    ms = {"controller": "modelstore"}
    assert value(samples, "controller_runtime_reconcile_total", result="error", **ms) == 2
    assert value(samples, "controller_runtime_reconcile_total", result="success", **ms) == 1
    assert value(samples, "controller_runtime_reconcile_errors_total", **ms) == 2
    assert ("controller_runtime_reconcile_total", (("controller", "modelstore"), ("result", "requeue"))) in samples


def _text(metrics: OperatorMetrics) -> str:
    return generate_latest(metrics.registry).decode()
