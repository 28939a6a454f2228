"""The connector's counts on the gateway's /metrics, read when Prometheus scrapes (local_openfaas_ names: OpenFaaS's
cron-connector has no metrics of its own)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from local_openfaas.cron.connector import CronConnector


class CronCollector:
    def __init__(self, connector: CronConnector):
        self.connector = connector

    def collect(self):
        counts = self.connector.counts
        runs = CounterMetricFamily("local_openfaas_cron_runs", "Scheduled invocations by the cron-connector, by "
                                   "function and status code of the answer (none: no answer).",
                                   labels=["function_name", "code"])
        for (name, code), count in sorted(counts.runs.items()):
            runs.add_metric([name, code], count)
        skipped = CounterMetricFamily("local_openfaas_cron_skipped", "Scheduled times skipped because the "
                                      "function's previous run was still going.", labels=["function_name"])
        for name, count in sorted(counts.skipped.items()):
            skipped.add_metric([name], count)
        scheduled = GaugeMetricFamily("local_openfaas_cron_functions", "Functions on the cron-connector's "
                                      "schedule.", value=len(self.connector.entries))
        passes = CounterMetricFamily("local_openfaas_cron_passes", "Completed cron-connector passes over the "
                                     "functions.", value=counts.passes)
        return [runs, skipped, scheduled, passes]
