"""The warm pool's memory on /metrics: how many pre-warmed processes each environment (virtualenv) keeps waiting
and their resident memory, read from /proc when Prometheus scrapes. The study counts this memory as reserved by
the functions (it is what the pool costs for the cold starts it hides). A process taken from the pool is its
function's replica from then on and is no longer counted here."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily

from local_openfaas.runtime.load import rss_bytes
from local_openfaas.runtime.pool import WarmPools


def pools_of(runtime) -> WarmPools | None:
    """The process backend's pools (a runtime without them, such as the pods backend's, has no series here)."""
    for owner in (runtime, getattr(runtime, "backend", None)):
        pools = getattr(owner, "pools", None)
        if isinstance(pools, WarmPools):
            return pools
    return None


class PoolCollector:
    def __init__(self, runtime):
        self.runtime = runtime

    def collect(self):
        count = GaugeMetricFamily("local_openfaas_pool_processes", "Pre-warmed processes of the environment's "
                                  "warm pool (starting or waiting; shared by every function on it).",
                                  labels=["environment"])
        memory = GaugeMetricFamily("local_openfaas_pool_rss_bytes", "Resident memory of those processes.",
                                   labels=["environment"])
        pools = pools_of(self.runtime)
        for environment, pids in sorted((pools.usage() if pools else {}).items()):
            sizes = [size for size in map(rss_bytes, pids) if size is not None]  # None: it exited meanwhile
            count.add_metric([environment], len(sizes))
            memory.add_metric([environment], sum(sizes))
        return [count, memory]
