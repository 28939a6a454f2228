"""`make up --prometheus`: a real Prometheus scraping the operator, the gateway, the model store and (found
through the gateway) every function replica."""

from __future__ import annotations

from pathlib import Path

from mlfunctions_harness import prometheus

from mlfunctions_stack.commands import port_free


def start(state_dir: Path, operator_metrics: str, gateway, store_port: int,
          port: int | None = None) -> prometheus.PrometheusProcess:
    """Prometheus on 127.0.0.1:`port` (any free port when None), its data in `state_dir`/prometheus;
    `operator_metrics` is the operator's host:port, `gateway` the running GatewayProcess."""
    if port:
        port_free(port, "Prometheus", "--prometheus-port")
    return prometheus.start(prometheus.Targets(
        operator=operator_metrics, gateway=gateway.url.removeprefix("http://"),
        iris_server=f"127.0.0.1:{store_port}", gateway_auth=gateway.basic_auth),
        state_dir / "prometheus", port)
