"""A real Prometheus (built from its Go module) scraping the running stack answers PromQL about what was done:
every target up, the gateway's invocation count, the operator's reconciles, the model version predict serves,
the model store's upload."""

from __future__ import annotations

import pytest
from mlfunctions_harness.prometheus import all_up

pytestmark = pytest.mark.server
JOBS = ("operator", "gateway", "iris-server", "functions")


@pytest.mark.parametrize("job", JOBS)
def test_every_target_of_each_job_is_up(observed, job):
    up = observed["prometheus"].wait_query(f'up{{job="{job}"}}', all_up, what=f"every {job} target up")
    assert up and all(sample["value"][1] == "1" for sample in up)


def test_functions_are_found_through_the_gateways_service_discovery(observed):
    """The predict replica that answered is a `functions` target labelled with its function_name."""
    predict = _name(observed["predictor"])
    found = observed["prometheus"].wait_query(f'up{{job="functions",function_name="{predict}"}}', all_up)
    assert found[0]["metric"]["function_name"] == predict


def test_gateway_counts_every_successful_call(observed):
    expected = sum(observed["calls"].values())
    result = observed["prometheus"].wait_query(
        'sum(gateway_function_invocation_total{code="200"})',
        lambda r: bool(r) and float(r[0]["value"][1]) >= expected, what=f"{expected} invocations counted")
    assert float(result[0]["value"][1]) == expected
    per_function = observed["prometheus"].query('sum by (function_name) (gateway_function_invocation_total{code="200"})')
    assert {s["metric"]["function_name"]: float(s["value"][1]) for s in per_function} == observed["calls"]


def test_invocation_started_is_a_counter_prometheus_can_rate(observed):
    """OpenFaaS's exact name, no _total: Prometheus stores it as a counter (its metadata says so), every call was
    counted as started, and rate() over it answers per function."""
    expected = observed["calls"]
    started = observed["prometheus"].wait_query(
        'sum by (function_name) (gateway_function_invocation_started{job="gateway"})',
        lambda r: {s["metric"]["function_name"]: float(s["value"][1]) for s in r} == expected,
        what="every call counted as started")
    assert {s["metric"]["function_name"] for s in started} == set(expected)
    rates = observed["prometheus"].query('rate(gateway_function_invocation_started{job="gateway"}[1m])')
    assert {s["metric"]["function_name"] for s in rates} == set(expected)
    assert all(float(s["value"][1]) >= 0 for s in rates)
    metadata = observed["prometheus"].session.get(f"{observed['prometheus'].url}/api/v1/metadata", params={
        "metric": "gateway_function_invocation_started"}, timeout=10).json()["data"]
    assert [m["type"] for m in metadata["gateway_function_invocation_started"]] == ["counter"]


def test_gateway_counts_the_cold_start(observed):
    predict = _name(observed["cold_predictor"])
    result = observed["prometheus"].wait_query(
        f'local_openfaas_cold_starts_total{{function_name="{predict}"}}',
        lambda r: bool(r) and float(r[0]["value"][1]) >= 1)
    assert float(result[0]["value"][1]) >= 1


def test_operator_reconciled_mlfunctions(observed):
    result = observed["prometheus"].wait_query(
        'sum(controller_runtime_reconcile_total{job="operator",controller="mlfunction"})',
        lambda r: bool(r) and float(r[0]["value"][1]) > 0)
    assert float(result[0]["value"][1]) > 0


def test_predict_replica_names_the_trained_version(observed):
    result = observed["prometheus"].wait_query(
        'mlfunctions_model_version_info{job="functions",model="iris"}', bool)
    assert {s["metric"]["version"] for s in result} == {str(observed["version"])}
    assert all(s["value"][1] == "1" for s in result)


def test_model_store_counted_the_upload(observed):
    result = observed["prometheus"].wait_query(
        'sum(iris_uploads_total{job="iris-server",outcome="created"})',
        lambda r: bool(r) and float(r[0]["value"][1]) >= 1)
    assert float(result[0]["value"][1]) == 1  # one training, one upload


def test_model_store_counted_the_refused_request(observed):
    result = observed["prometheus"].wait_query(
        'iris_requests_refused_total{job="iris-server",limit="header_bytes"}',
        lambda r: bool(r) and float(r[0]["value"][1]) >= 1)
    assert float(result[0]["value"][1]) == 1


def _name(mlfunction: dict) -> str:
    function = mlfunction["status"]["function"]
    return f"{function['name']}.{function['namespace']}"
