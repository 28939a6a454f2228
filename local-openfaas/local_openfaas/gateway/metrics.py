"""GET /metrics and GET /system/metrics-targets. Names and labels are OpenFaaS's gateway's where it has the same
measure (gateway_function_invocation_started, gateway_function_invocation_total{function_name,code},
gateway_functions_seconds, gateway_service_count), so its dashboards work; what only this runtime has carries the
local_openfaas_ prefix (replica starts, cold starts and their wait, autoscaler rounds — tests read the last to see
that something did *not* happen over several rounds without sleeping).

Each gateway has its own CollectorRegistry: several gateways run in one test process and must not share counts.
State the runtime keeps anyway (ready replicas, replica starts, autoscaler rounds) is read at scrape time by a
collector instead of being copied into a second set of numbers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from local_openfaas.gateway.pool_metrics import PoolCollector
from local_openfaas.runtime.replica import Replica
from local_openfaas.runtime.runtime import Deployed, FunctionRuntime

disable_created_metrics()  # the *_created series (process-wide switch) double the output; OpenFaaS has none
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The function's own metrics, next to its /_/health (functions/README.md).
FUNCTION_METRICS_PATH = "/_/metrics"
# OpenFaaS's gateway uses the Go client's default buckets.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COLD_START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def function_name(deployed: Deployed) -> str:
    return f"{deployed.spec.name}.{deployed.spec.namespace}"


def ready_replicas(deployed: Deployed) -> list[Replica]:
    supervisor = deployed.supervisor
    if supervisor is None:
        return []
    return [r for r in supervisor.replicas if isinstance(r, Replica) and r.ready]


class _RuntimeCollector:
    """What the runtime already counts, read when Prometheus scrapes."""

    def __init__(self, runtime: FunctionRuntime):
        self.runtime = runtime

    def collect(self):
        replicas = GaugeMetricFamily("gateway_service_count", "Ready replicas of the function.",
                                     labels=["function_name"])
        starts = CounterMetricFamily("local_openfaas_replica_starts", "Replicas started for the function "
                                     "(restarts included).", labels=["function_name"])
        for _, deployed in sorted(self.runtime.functions.items()):
            supervisor, label = deployed.supervisor, [function_name(deployed)]
            replicas.add_metric(label, supervisor.snapshot().available if supervisor else 0)
            starts.add_metric(label, supervisor.starts if supervisor else 0)
        passes = CounterMetricFamily("local_openfaas_autoscaler_passes", "Completed autoscaler rounds over every "
                                     "function.", value=self.runtime.autoscaler_passes)
        return [replicas, starts, passes]


class _StartedCounter:
    """gateway_function_invocation_started: a counter whose samples carry no _total suffix, as OpenFaaS's gateway
    exposes it (a Go CounterVec named so, so its dashboards query that name). prometheus_client writes every
    counter's TYPE line as <name>_total, which would not match the samples, so this family is rendered here, in
    the text format's own spelling, after what the registry renders."""

    NAME = "gateway_function_invocation_started"
    HELP = "Requests the gateway began proxying to the function."

    def __init__(self):
        self.counts: dict[str, int] = {}

    def render(self) -> bytes:
        lines = [f"# HELP {self.NAME} {self.HELP}", f"# TYPE {self.NAME} counter"]
        lines += [f'{self.NAME}{{function_name="{_label_value(name)}"}} {float(count)!r}'
                  for name, count in sorted(self.counts.items())]
        return ("\n".join(lines) + "\n").encode()


def _label_value(value: str) -> str:
    """A label value escaped as the text format wants (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class GatewayMetrics:
    def __init__(self, runtime: FunctionRuntime):
        self.runtime = runtime
        self.registry = CollectorRegistry(auto_describe=False)
        self._started = _StartedCounter()
        self.registry.register(_RuntimeCollector(runtime))
        self.registry.register(PoolCollector(runtime))
        self._total = Counter("gateway_function_invocation", "Requests proxied to the function, by status code "
                              "of the answer.", ["function_name", "code"], registry=self.registry)
        self._seconds = Histogram("gateway_functions_seconds", "Time to the function's answer, as the gateway "
                                  "saw it.", ["function_name", "code"], buckets=_BUCKETS, registry=self.registry)
        self._cold_starts = Counter("local_openfaas_cold_starts", "Requests that found no ready replica and "
                                    "waited for one (scaled from zero or still starting).", ["function_name"],
                                    registry=self.registry)
        self._cold_wait = Histogram("local_openfaas_cold_start_seconds", "How long such a request waited for a "
                                    "ready replica.", ["function_name"], buckets=_COLD_START_BUCKETS,
                                    registry=self.registry)

    def started(self, deployed: Deployed) -> None:
        name = function_name(deployed)
        self._started.counts[name] = self._started.counts.get(name, 0) + 1

    def finished(self, deployed: Deployed, code: int, seconds: float) -> None:
        name = function_name(deployed)
        self._total.labels(name, str(code)).inc()
        self._seconds.labels(name, str(code)).observe(seconds)

    def cold_start(self, deployed: Deployed, waited: float) -> None:
        name = function_name(deployed)
        self._cold_starts.labels(name).inc()
        self._cold_wait.labels(name).observe(waited)

    def render(self) -> bytes:
        return generate_latest(self.registry) + self._started.render()

    def targets(self) -> list[dict]:
        """Prometheus http_sd_config: one target group per ready replica this gateway runs."""
        groups = []
        for _, deployed in sorted(self.runtime.functions.items()):
            for replica in ready_replicas(deployed):
                groups.append({"targets": [f"127.0.0.1:{replica.port}"],
                               "labels": {"function_name": function_name(deployed),
                                          "__metrics_path__": FUNCTION_METRICS_PATH}})
        return groups
