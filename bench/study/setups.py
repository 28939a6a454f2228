"""The setups the study compares, as the simulator sees them: what a replica reserves and uses, what a request
costs, what a cold start costs. Built from the calibration's measurements (calibration.py) by `from_inputs`."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("predict", "train")


@dataclass(frozen=True)
class Work:
    """One kind of request: warm latency samples (ms, as measured) and CPU-seconds per request."""

    warm_ms: tuple[float, ...]
    cpu_s: float


@dataclass(frozen=True)
class Monolith:
    """One process holding every model (min = max = 1: always on), or an HPA on CPU between min and max
    replicas (Kubernetes' defaults: a sync every 15 s, scale-down stabilised over 300 s)."""

    name: str
    reserved_mib: float
    used_mib: float
    work: dict[str, Work]
    min_replicas: int = 1
    max_replicas: int = 1
    cpu_request: float = 1.0  # cores per replica
    cpu_target: float = 0.5  # HPA target utilisation of the request
    start_cpu_s: float = 0.0
    sync_s: float = 15.0
    stabilisation_s: float = 300.0


@dataclass(frozen=True)
class Replica:
    """A function replica of one kind: its memory request, its resident memory, its cold start without the pool,
    and the CPU a start costs."""

    reserved_mib: float
    used_mib: float
    cold_s: float
    start_cpu_s: float


@dataclass(frozen=True)
class Functions:
    """One predict and one train function per model, each scaled to zero after `idle_timeout` seconds without a
    request; a warm pool of `pool_size` processes (or pods) per interpreter, always on, shared by every function
    of that interpreter. A taken pool process is replaced `refill_s` later."""

    name: str
    replica: dict[str, Replica]
    work: dict[str, Work]
    idle_timeout: float
    pool_size: int = 0
    pool_cold_s: dict[str, float] = field(default_factory=dict)
    zygote_mib: dict[str, float] = field(default_factory=dict)
    refill_s: dict[str, float] = field(default_factory=dict)
    rps_per_replica: float = 45.0  # OpenFaaS Pro's rps target 50 × target-proportion 0.9 (runtime/scaling.py)
    max_replicas: int = 20
    autoscale_s: float = 10.0
    # Cores that starting replicas share (None: as many as they need, a cluster's spread). With it, a start
    # overlapping others takes cost × max(1, starts in progress / start_cores): the replays' 2-core machine.
    start_cores: int | None = None
    pool_kinds: tuple[str, ...] | None = None  # interpreters that have a pool (None: every one)

    def pooled(self, kind: str) -> bool:
        return self.pool_size > 0 and (self.pool_kinds is None or kind in self.pool_kinds)


def with_timeout(setup: Functions, idle_timeout: float) -> Functions:
    return Functions(**{**setup.__dict__, "idle_timeout": idle_timeout})


def on_cores(setup, cores: int):
    """The same function setup with its starts sharing `cores` cores (a monolith is returned as it is)."""
    return Functions(**{**setup.__dict__, "start_cores": cores}) if isinstance(setup, Functions) else setup
