"""One function on the pods backend: its replica count is its Deployment's (set through the scale subresource,
as OpenFaaS Pro's autoscaler and an HPA set it), its replicas are its pods, and a request is routed straight to a
ready pod's IP (faas-netes' endpoint resolver does the same; the Service stays for in-cluster callers).

Scale from zero holds the request until a pod is ready. Waiting for the kubelet's Ready would add the
readiness probe's timing (the OpenFaaS chart's: first after 2 s, then every 2 s) to every cold start, so while
a pod is running but not yet Ready the supervisor probes its health endpoint itself, every few milliseconds, as
Knative's activator does. A pod that answered is routable for PROBE_TRUST_SECONDS; after that only the
kubelet's verdict counts (so a pod that later fails its probes stops getting traffic)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from local_openfaas.faas_netes.objects import HEALTH_PATH
from local_openfaas.pods.pod_state import PodView
from local_openfaas.pods.pod_watch import PodWatch
from local_openfaas.runtime.replica import READY_PATH_ANNOTATION, http_ok
from local_openfaas.runtime.spec import FunctionSpec
from local_openfaas.runtime.supervisor import Snapshot

log = logging.getLogger("mlfunctions.pods")
PROBE_TRUST_SECONDS = 10.0   # longer than the kubelet needs to run its first readiness probe and report it
PROBE_INTERVAL = 0.01
SCALE_RETRY_SECONDS = 0.5    # the Deployment does not exist yet (the reconciler is creating it), or a call failed

ScaleCall = Callable[[str, int], Awaitable[None]]
ReplicasCall = Callable[[str], Awaitable[int | None]]


class Bridge(Protocol):
    """A pod pool as a function's supervisor sees it (pods/pool.py): a pool pod specialized as this function,
    serving until its own pod is ready."""

    async def take(self) -> PodView | None: ...

    async def retire(self, pod: PodView) -> None: ...

    def gone(self, pod: PodView) -> bool: ...


class PodSupervisor:
    def __init__(self, spec: FunctionSpec, pods: PodWatch, scale: ScaleCall, read_replicas: ReplicasCall,
                 replicas: int, on_change: Callable[[PodSupervisor], None], bridge: Bridge | None = None):
        self.spec = spec
        self.bridge = bridge
        self._bridges: dict[str, PodView] = {}   # pool pods serving this function until its own pod is ready
        self._bridging: asyncio.Task | None = None
        self._retiring: set[asyncio.Task] = set()
        self.desired = replicas
        self.starts = 0
        self.replicas: list[PodView] = []
        self._pods, self._scale_call, self._read_replicas = pods, scale, read_replicas
        self._on_change = on_change
        self._seen: set[str] = set()
        self._answered: dict[str, float] = {}   # pod name -> when it answered our own probe
        self._probing: dict[str, asyncio.Task] = {}
        self._ready: list[PodView] = []
        self._next = 0
        self._applied: int | None = None        # the count the Deployment has, as far as we know
        self._scaled = False                    # scale() was called: our count wins over the Deployment's
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._closed = False
        self._stop_listening = pods.listen(spec.name, self._pods_changed)
        self._pods_changed()
        self._task = asyncio.create_task(self._keep_count(), name=f"scale {spec.namespace}/{spec.name}")

    # ---- the Supervisor interface (runtime/backend.py) ----

    def pick(self) -> PodView | None:
        ready = self._ready
        if not ready:
            return None
        self._next = (self._next + 1) % len(ready)
        return ready[self._next]

    async def wait_ready(self, timeout: float) -> PodView | None:
        deadline = time.monotonic() + timeout
        while True:
            pod = self.pick()
            if pod is not None or self._closed:
                return pod
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stuck():
                return None
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                continue

    def scale(self, replicas: int) -> None:
        self._scaled = True
        if self.bridge is not None and replicas > 0 and not self._ready and self._bridging is None:
            self._bridging = asyncio.create_task(self._bridge_from_pool(), name=f"pool pod for {self.spec.name}")
        if replicas == 0:
            self._retire_bridges()
        if replicas != self.desired:
            log.info("scaling", extra={"function": self.spec.name, "namespace": self.spec.namespace,
                                       "from": self.desired, "to": replicas})
            self.desired = replicas
            self._wake.set()
            self._on_change(self)

    def update(self, spec: FunctionSpec, prepared: object) -> None:
        self.spec = spec  # the reconciler rolls the Deployment; the pods watch sees the new pods
        self._on_change(self)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.desired, len(self._ready), 1 if self._stuck() else 0, self._stuck())

    async def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._changed.set()
        retiring = [self.bridge.retire(pod) for pod in self._bridges.values()] if self.bridge else []
        self._bridges.clear()
        await asyncio.gather(*retiring, return_exceptions=True)
        tasks = [self._task, *self._probing.values(), *([self._bridging] if self._bridging else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- pods → routable replicas ----

    def _pods_changed(self) -> None:
        now = time.monotonic()
        pods = [p for p in self._pods.pods(self.spec.name) if p.ip and not p.deleting]
        for pod in pods:
            if pod.name not in self._seen:
                self._seen.add(pod.name)
                self.starts += 1
            if pod.running and not pod.ready and pod.name not in self._answered and pod.name not in self._probing:
                self._probing[pod.name] = asyncio.create_task(self._probe(pod), name=f"probe {pod.name}")
        names = {p.name for p in pods}
        for name in [n for n in self._probing if n not in names]:
            self._probing.pop(name).cancel()
        self._answered = {n: t for n, t in self._answered.items() if n in names}
        self.replicas = pods
        ready = [p for p in pods if not p.stuck and (
            p.ready or now - self._answered.get(p.name, -PROBE_TRUST_SECONDS) < PROBE_TRUST_SECONDS)]
        if ready:
            self._retire_bridges()  # its own pod serves: the pool pods that stood in are done
        elif self._bridges:
            self._bridges = {n: p for n, p in self._bridges.items() if not self.bridge.gone(p)}
            ready = list(self._bridges.values())
        if [p.name for p in ready] != [p.name for p in self._ready]:
            self._ready = ready
            self._on_change(self)
        self._changed.set()
        self._changed = asyncio.Event()

    async def _bridge_from_pool(self) -> None:
        """Scaled from zero: a pool pod serves until the function's own pod is ready (if one is ready sooner)."""
        try:
            pod = await self.bridge.take()
        finally:
            self._bridging = None
        if pod is None:
            return
        if self._closed or self.desired == 0 or self._ready:
            await self.bridge.retire(pod)  # not needed any more by the time it was specialized
            return
        self._bridges[pod.name] = pod
        self._pods_changed()

    def _retire_bridges(self) -> None:
        bridges, self._bridges = list(self._bridges.values()), {}
        for pod in bridges:
            task = asyncio.get_running_loop().create_task(self.bridge.retire(pod), name=f"retire {pod.name}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _probe(self, pod: PodView) -> None:
        """Probe a running pod until it answers; then it is routable before the kubelet's first probe."""
        path = self.spec.annotations.get(READY_PATH_ANNOTATION, HEALTH_PATH)
        try:
            while not await http_ok(pod.address[1], path, timeout=1.0, host=pod.ip):
                await asyncio.sleep(PROBE_INTERVAL)
            self._answered[pod.name] = time.monotonic()
            # Re-evaluated once the trust runs out, in case the kubelet never says Ready.
            asyncio.get_running_loop().call_later(PROBE_TRUST_SECONDS, self._pods_changed)
        finally:
            self._probing.pop(pod.name, None)
        self._pods_changed()

    def _stuck(self) -> str:
        """Why the function cannot serve, when every pod it has is stuck (and it has some)."""
        pods = self.replicas
        if pods and all(p.stuck for p in pods):
            return f"pod {pods[0].name}: {pods[0].stuck}"
        return ""

    # ---- the Deployment's count ----

    async def _keep_count(self) -> None:
        """Adopt the Deployment's count once it exists (unless scale() came first), then keep it at `desired`."""
        name = self.spec.name
        while True:
            self._wake.clear()  # before reading `desired`: a scale() from here on wakes the wait below
            try:
                if self._applied is None:
                    current = await self._read_replicas(name)
                    if current is None:
                        raise LookupError(name)
                    if not self._scaled:
                        self.desired = current
                    self._applied = current
                if self._applied != self.desired:
                    if self._bridging is not None and self.desired > self._applied:
                        # A pool pod is being specialized for this cold start: the function's own pod starts
                        # after it, not beside it (on a small node both would share the CPU the answer needs).
                        await asyncio.wait({self._bridging})
                        continue
                    wanted = self.desired
                    await self._scale_call(name, wanted)
                    self._applied = wanted
                    continue
            except LookupError:  # no Deployment yet: the reconciler is creating it
                self._applied = None
                await asyncio.sleep(SCALE_RETRY_SECONDS)
                continue
            except Exception as error:  # an API server away or refusing: the count is set once it is back
                log.warning("scaling the Deployment failed; retrying", extra={"function": name, "error": repr(error)})
                await asyncio.sleep(SCALE_RETRY_SECONDS)
                continue
            await self._wake.wait()
