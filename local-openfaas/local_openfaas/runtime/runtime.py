"""The local OpenFaaS provider: the set of deployed functions, their supervisors (from a backend: processes or
pods, see backend.py) and the autoscaler. Whatever decides *what* is deployed (Function resources, or the
gateway's API without a cluster) calls apply/remove; the gateway calls replica_for to route a request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from local_openfaas.runtime.backend import Backend, ReadyReplica, Supervisor
from local_openfaas.runtime.load import LoadMeter, cpu_seconds
from local_openfaas.runtime.programs import UnknownImage
from local_openfaas.runtime.replica import Replica
from local_openfaas.runtime.scaling import InvalidScalingLabel, ScalingPolicy, desired_replicas
from local_openfaas.runtime.spec import FunctionSpec

log = logging.getLogger("mlfunctions.runtime")


class FunctionNotFound(LookupError):
    pass


class FunctionUnavailable(RuntimeError):
    """The function exists but has no ready replica (it cannot start, or did not start in time)."""


@dataclass
class Deployed:
    spec: FunctionSpec
    meter: LoadMeter
    policy: ScalingPolicy | None = None
    supervisor: Supervisor | None = None
    error: str = ""                      # why it cannot run (bad labels, unknown image), for the status
    preparing: bool = False              # its image (virtualenv) is being prepared: no replicas yet
    cpu: dict[int, tuple[float, float]] = field(default_factory=dict)  # pid -> (cpu seconds, at)


class FunctionRuntime:
    def __init__(self, backend: Backend, *, autoscale_interval: float = 1.0, ready_timeout: float = 60.0,
                 on_change: Callable[[Deployed], None] = lambda deployed: None):
        self.backend = backend
        self.ready_timeout = ready_timeout
        self.autoscale_interval = autoscale_interval
        self._on_change = on_change
        self.functions: dict[tuple[str, str], Deployed] = {}
        self.autoscaler_passes = 0  # completed rounds over every function (a test counts them: "it did not scale")
        self._autoscaler: asyncio.Task | None = None

    async def start(self) -> None:
        self._autoscaler = asyncio.create_task(self._autoscale_forever(), name="autoscaler")

    async def close(self) -> None:
        if self._autoscaler:
            self._autoscaler.cancel()
            await asyncio.gather(self._autoscaler, return_exceptions=True)
        await asyncio.gather(*(self._stop(d) for d in self.functions.values()), return_exceptions=True)
        self.functions.clear()
        await self.backend.close()

    # ---- what is deployed ----

    async def apply(self, spec: FunctionSpec) -> Deployed:
        """Deploy or update a function. Problems (bad labels, unknown image) are recorded on the returned
        Deployed.error, and the function runs no replicas until a new spec fixes them."""
        deployed = self.functions.get(spec.key)
        if deployed is None:
            deployed = self.functions[spec.key] = Deployed(spec=spec, meter=LoadMeter())
        deployed.spec = spec
        try:
            policy = ScalingPolicy.from_labels(spec.labels)
            deployed.preparing = True
            self._on_change(deployed)
            prepared = await self.backend.prepare(spec)
        except (InvalidScalingLabel, UnknownImage) as error:
            deployed.error = str(error)
            await self._stop(deployed)
            self._on_change(deployed)
            return deployed
        except Exception as error:  # a virtualenv that fails to build: report it, keep serving the rest
            deployed.error = f"cannot prepare image {spec.image}: {error}"
            log.exception("image preparation failed", extra={"function": spec.name, "image": spec.image})
            await self._stop(deployed)
            self._on_change(deployed)
            return deployed
        finally:
            deployed.preparing = False
        deployed.error, deployed.policy = "", policy
        if deployed.supervisor is None:
            deployed.meter.touch()
            deployed.supervisor = self.backend.supervise(spec, prepared, policy.floor,
                                                         lambda _: self._on_change(deployed))
        else:
            deployed.supervisor.update(spec, prepared)
            current = deployed.supervisor.desired
            if current:
                deployed.supervisor.scale(min(policy.max_replicas, max(policy.floor, current)))
        self._on_change(deployed)
        return deployed

    async def remove(self, namespace: str, name: str) -> bool:
        deployed = self.functions.pop((namespace, name), None)
        if deployed is None:
            return False
        await self._stop(deployed)
        return True

    def get(self, namespace: str, name: str) -> Deployed:
        deployed = self.functions.get((namespace, name))
        if deployed is None:
            raise FunctionNotFound(f"function {name} not found in namespace {namespace}")
        return deployed

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        deployed = self.get(namespace, name)
        if deployed.supervisor is None:
            raise FunctionUnavailable(deployed.error)
        if replicas > deployed.supervisor.desired:
            deployed.meter.touch()
        deployed.supervisor.scale(replicas)

    # ---- the request path ----

    async def replica_for(self, deployed: Deployed) -> ReadyReplica:
        """A ready replica of the function, scaling it from zero and holding the caller until one is ready."""
        supervisor = deployed.supervisor
        if supervisor is None:
            raise FunctionUnavailable(deployed.error or "function is not deployed")
        replica = supervisor.pick()
        if replica is not None:
            return replica
        if supervisor.desired == 0:
            deployed.meter.touch()
            supervisor.scale(deployed.policy.floor)
            log.info("scaling from zero", extra={"function": deployed.spec.name,
                                                 "namespace": deployed.spec.namespace})
        replica = await supervisor.wait_ready(self.ready_timeout)
        if replica is None:
            reason = supervisor.snapshot().last_error or f"no replica became ready within {self.ready_timeout:.0f}s"
            raise FunctionUnavailable(reason)
        return replica

    # ---- autoscaling ----

    async def _autoscale_forever(self) -> None:
        while True:
            await asyncio.sleep(self.autoscale_interval)
            for deployed in list(self.functions.values()):
                try:
                    self._autoscale(deployed)
                except Exception:
                    log.exception("autoscaling failed", extra={"function": deployed.spec.name})
            self.autoscaler_passes += 1

    def _autoscale(self, deployed: Deployed) -> None:
        supervisor, policy = deployed.supervisor, deployed.policy
        if supervisor is None or policy is None:
            return
        ready = supervisor.snapshot().available
        if policy.type == "rps":
            load = deployed.meter.rps()
        elif policy.type == "capacity":
            load = float(deployed.meter.inflight)
        else:
            load = self._millicpu(deployed)
        wanted = desired_replicas(policy, ready, load, deployed.meter.idle_seconds(), supervisor.desired)
        if wanted != supervisor.desired:
            supervisor.scale(wanted)

    def _millicpu(self, deployed: Deployed) -> float:
        """CPU used by the function's ready replicas since the last tick, in milli-CPU."""
        now, total, seen = time.monotonic(), 0.0, {}
        for replica in deployed.supervisor.replicas:
            if not isinstance(replica, Replica) or not replica.ready:
                continue
            used = cpu_seconds(replica.process.pid)
            if used is None:
                continue
            seen[replica.process.pid] = (used, now)
            before = deployed.cpu.get(replica.process.pid)
            if before and now > before[1]:
                total += (used - before[0]) / (now - before[1]) * 1000.0
        deployed.cpu = seen
        return total

    async def _stop(self, deployed: Deployed) -> None:
        supervisor, deployed.supervisor = deployed.supervisor, None
        if supervisor is not None:
            await supervisor.close()
