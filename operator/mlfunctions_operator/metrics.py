"""The operator's Prometheus metrics, under controller-runtime's names and labels so its dashboards work.

What each one measures here (docs/metrics.md says the same for users): one reconcile loop per object
(scheduler.py) is the operator's "work queue" for its kind: an item is queued when the loop is due (woken by a
watch event, a back-off or the resync), waits in the queue until a worker (the reconcile semaphore) takes it, and
is worked on while its pass runs. `name` is the controller's name, as controller-runtime names its queues.
Also `mlfunctions_operator_objects{kind,status}`: objects by the kstatus the operator last wrote for them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily

# controller-runtime's buckets: reconcile time and queue/work durations.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
                     1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50,
                     60)
QUEUE_BUCKETS = tuple(10.0 ** exponent for exponent in range(-8, 2))  # 1e-8 ... 10 s, client-go's
KSTATUSES = ("Current", "InProgress", "Failed")


def kstatus(ready: bool, stalled: bool) -> str:
    """The kstatus of a verdict: Current when ready, Failed when stalled, else InProgress."""
    return "Current" if ready else "Failed" if stalled else "InProgress"


def result_of(retry: bool) -> str:
    """A finished pass's result as controller-runtime counts it. A verdict retried with back-off (a store or the
    API server failing, mostly) is what a controller-runtime reconciler returns as an error: `error`. Everything
    else, ready or waiting for a watch event or the user, is `success` (the watch or resync brings it back, as
    an informer does). Passes that fail outright (a crash, the status write failing) are `error` too. The operator
    never asks for a plain or timed requeue: `requeue` and `requeue_after` stay 0, exported so dashboards find them."""
    return "error" if retry else "success"


def metrics_address(health_address: str) -> str:
    """Where /metrics is served: $MLFUNCTIONS_METRICS_ADDRESS, by default the health endpoint's address (itself
    0.0.0.0:8080 by default, controller-runtime's metrics port), served by the same server then."""
    return os.environ.get("MLFUNCTIONS_METRICS_ADDRESS") or health_address


@dataclass
class Queue:
    """One controller's work queue: what is waiting (since when) and what is being worked on (since when)."""

    waiting: dict[str, float] = field(default_factory=dict)
    working: dict[str, float] = field(default_factory=dict)


class OperatorMetrics:
    """Every metric of the operator, in a registry of its own (with the process/platform/gc defaults)."""

    def __init__(self, workers: int) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.reconcile_total = Counter("controller_runtime_reconcile_total", "Total number of reconciliations per "
                                       "controller", ["controller", "result"], registry=registry)
        self.reconcile_errors = Counter("controller_runtime_reconcile_errors_total", "Total number of "
                                        "reconciliation errors per controller", ["controller"], registry=registry)
        self.reconcile_time = Histogram("controller_runtime_reconcile_time_seconds", "Length of time per "
                                        "reconciliation per controller", ["controller"], buckets=RECONCILE_BUCKETS,
                                        registry=registry)
        self.active_workers = Gauge("controller_runtime_active_workers", "Number of currently used workers per "
                                    "controller", ["controller"], registry=registry)
        self.max_workers = Gauge("controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent "
                                 "reconciles per controller", ["controller"], registry=registry)
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["controller", "name"],
                           registry=registry)
        self.adds = Counter("workqueue_adds_total", "Total number of adds handled by workqueue",
                            ["controller", "name"], registry=registry)
        self.queue_duration = Histogram("workqueue_queue_duration_seconds", "How long in seconds an item stays in "
                                        "workqueue before being requested", ["controller", "name"],
                                        buckets=QUEUE_BUCKETS, registry=registry)
        self.work_duration = Histogram("workqueue_work_duration_seconds", "How long in seconds processing an item "
                                       "from workqueue takes", ["controller", "name"], buckets=QUEUE_BUCKETS,
                                       registry=registry)
        self.retries = Counter("workqueue_retries_total", "Total number of retries handled by workqueue",
                               ["controller", "name"], registry=registry)
        self.objects = Gauge("mlfunctions_operator_objects", "Objects by the kstatus the operator last wrote",
                             ["kind", "status"], registry=registry)
        self.queues: dict[str, Queue] = {}
        self.statuses: dict[tuple[str, str], str] = {}  # (controller, uid) -> kstatus
        for controller in ("mlfunction", "modelstore"):
            self.max_workers.labels(controller).set(workers)
            self.active_workers.labels(controller)
            self.reconcile_errors.labels(controller)
            self.reconcile_time.labels(controller)
            for result in ("success", "error", "requeue", "requeue_after"):
                self.reconcile_total.labels(controller, result)
            for family in (self.depth, self.adds, self.queue_duration, self.work_duration, self.retries):
                family.labels(controller, controller)
            self.queues[controller] = Queue()
            for status in KSTATUSES:
                self.objects.labels(_kind(controller), status)
        registry.register(_UnfinishedWork(self.queues))

    def queued(self, controller: str, uid: str, retry: bool = False) -> None:
        """The object's loop is due: a watch event, a back-off (`retry`) or the resync."""
        queue = self.queues[controller]
        if uid in queue.waiting:
            return  # already queued: the work queue deduplicates
        queue.waiting[uid] = time.monotonic()
        self.adds.labels(controller, controller).inc()
        if retry:
            self.retries.labels(controller, controller).inc()
        self.depth.labels(controller, controller).set(len(queue.waiting))

    @contextmanager
    def working(self, controller: str, uid: str) -> Iterator[None]:
        """A worker took the object: it leaves the queue and is worked on until the block ends."""
        queue = self.queues[controller]
        now = time.monotonic()
        since = queue.waiting.pop(uid, now)
        self.depth.labels(controller, controller).set(len(queue.waiting))
        self.queue_duration.labels(controller, controller).observe(now - since)
        queue.working[uid] = now
        self.active_workers.labels(controller).inc()
        try:
            yield
        finally:
            elapsed = time.monotonic() - queue.working.pop(uid)
            self.active_workers.labels(controller).dec()
            self.work_duration.labels(controller, controller).observe(elapsed)
            self.reconcile_time.labels(controller).observe(elapsed)

    def reconciled(self, controller: str, result: str) -> None:
        self.reconcile_total.labels(controller, result).inc()
        if result == "error":
            self.reconcile_errors.labels(controller).inc()

    def status(self, controller: str, uid: str, status: str | None) -> None:
        """The kstatus the operator wrote for an object; None: the object is gone."""
        previous = self.statuses.pop((controller, uid), None)
        if previous:
            self.objects.labels(_kind(controller), previous).dec()
        if status:
            self.statuses[controller, uid] = status
            self.objects.labels(_kind(controller), status).inc()

    def forget(self, controller: str, uid: str) -> None:
        """The object's loop ended: it is neither queued nor counted any more."""
        queue = self.queues[controller]
        if queue.waiting.pop(uid, None) is not None:
            self.depth.labels(controller, controller).set(len(queue.waiting))
        self.status(controller, uid, None)


class _UnfinishedWork:
    """workqueue_unfinished_work_seconds and workqueue_longest_running_processor_seconds, computed at scrape."""

    def __init__(self, queues: dict[str, Queue]) -> None:
        self.queues = queues

    def collect(self):
        unfinished = GaugeMetricFamily("workqueue_unfinished_work_seconds", "How many seconds of work has been "
                                       "done that is in progress", labels=["controller", "name"])
        longest = GaugeMetricFamily("workqueue_longest_running_processor_seconds", "How many seconds has the "
                                    "longest running processor for workqueue been running",
                                    labels=["controller", "name"])
        now = time.monotonic()
        for controller, queue in self.queues.items():
            running = [now - since for since in queue.working.values()]
            unfinished.add_metric([controller, controller], sum(running))
            longest.add_metric([controller, controller], max(running, default=0.0))
        yield unfinished
        yield longest


def _kind(controller: str) -> str:
    return {"mlfunction": "MLFunction", "modelstore": "ModelStore"}[controller]
