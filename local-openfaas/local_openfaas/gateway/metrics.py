"""GET /metrics: what the runtime counts, in the Prometheus text format, named as OpenFaaS's gateway names it
where it has the same measure (gateway_function_invocation_total, gateway_service_count); the runtime's own
counters have the local_openfaas_ prefix. Read by tests that must see that something did *not* happen (no
replica started over several autoscaler rounds) without sleeping."""

from __future__ import annotations

from local_openfaas.runtime.runtime import FunctionRuntime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render(runtime: FunctionRuntime) -> str:
    invocations, replicas, starts = [], [], []
    for (namespace, name), deployed in sorted(runtime.functions.items()):
        label = f'{{function_name="{name}.{namespace}"}}'
        supervisor = deployed.supervisor
        invocations.append(f"gateway_function_invocation_total{label} {deployed.meter.invocations}")
        replicas.append(f"gateway_service_count{label} {supervisor.snapshot().available if supervisor else 0}")
        starts.append(f"local_openfaas_replica_starts_total{label} {supervisor.starts if supervisor else 0}")
    lines = [
        "# HELP gateway_function_invocation_total Requests proxied to the function.",
        "# TYPE gateway_function_invocation_total counter", *invocations,
        "# HELP gateway_service_count Ready replicas of the function.",
        "# TYPE gateway_service_count gauge", *replicas,
        "# HELP local_openfaas_replica_starts_total Replicas started for the function (restarts included).",
        "# TYPE local_openfaas_replica_starts_total counter", *starts,
        "# HELP local_openfaas_autoscaler_passes_total Completed autoscaler rounds over every function.",
        "# TYPE local_openfaas_autoscaler_passes_total counter",
        f"local_openfaas_autoscaler_passes_total {runtime.autoscaler_passes}",
    ]
    return "\n".join(lines) + "\n"
