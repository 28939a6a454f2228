"""docs/metrics.md is true: every metric it documents for a component is in Prometheus, scraped from that
component's job, after the stack has trained, predicted and cold-started once (conftest's `observed`)."""

from __future__ import annotations

import pytest
from .metrics_doc import DOC, JOBS, Documented, heading_job, parse

pytestmark = pytest.mark.server


def test_parser_reads_the_rows_under_each_component():
    text = ("# Metrics\n\n## operator (job `operator`)\n\n| name | type | labels | meaning |\n| --- | --- | --- | --- |\n"
            "| `workqueue_depth` | gauge | controller, name | items waiting |\n\n## iris-server\n\n"
            "| `iris_uploads_total` | counter | outcome | uploads |\n")
    assert parse(text) == [Documented("operator", "workqueue_depth", "gauge"),
                           Documented("iris-server", "iris_uploads_total", "counter")]
    assert Documented("x", "a_seconds", "histogram").series_names() == {"a_seconds_bucket", "a_seconds_sum",
                                                                          "a_seconds_count"}
    assert heading_job("Function replicas") is None
    with pytest.raises(ValueError, match="names no job"):
        parse("## Overview\n| `a_total` | counter | | x |\n")


def test_every_component_has_documented_metrics():
    documented = parse(DOC.read_text())
    assert {row.job for row in documented} == set(JOBS)


# Series that exist only once an event happened that this package's workload does not cause: a scheduled run of
# the cron-connector (a minute's wait at the least). tests/local_openfaas/test_cron_gateway.py scrapes the runs
# from a gateway on a fast clock; tests/local_openfaas/test_cron_connector.py counts skipped times.
AFTER_SCHEDULED_RUNS = {"local_openfaas_cron_runs_total", "local_openfaas_cron_skipped_total"}


def test_every_documented_metric_is_scraped_from_its_component(observed):
    rows = parse(DOC.read_text())
    assert AFTER_SCHEDULED_RUNS <= {row.name for row in rows}, "a name above is no longer documented"
    documented = [row for row in rows if row.name not in AFTER_SCHEDULED_RUNS]
    prometheus = observed["prometheus"]
    missing: dict[str, list[str]] = {}
    for job in JOBS:
        expected = {name for row in documented if row.job == job for name in row.series_names()}

        def scraped(job=job) -> set[str]:
            return {s["metric"]["__name__"] for s in prometheus.query(f'count by (__name__) ({{job="{job}"}})')}

        try:
            prometheus.wait_query(f'count by (__name__) ({{job="{job}"}})',
                                  lambda r, expected=expected: expected <= {s["metric"]["__name__"] for s in r},
                                  timeout=30, what=f"every documented {job} metric")
        except TimeoutError:
            missing[job] = sorted(expected - scraped())
    assert not missing, f"documented in {DOC.name} but not scraped from the job: {missing}"
