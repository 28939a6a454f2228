"""The pods backend (runtime/backend.py's interface): the faas_netes reconciler keeps each Function's Deployment
and Service and writes its status from the Deployment's; the pods watch says which pods are ready; a
PodSupervisor per function routes to them and sets the Deployment's count for the autoscaler; with a pool size,
a pod pool (pool.py) stands in for a function's pod while it scales from zero."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from local_openfaas.faas_netes.kube import NamespaceClient
from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.faas_netes.reconciler import Reconciler
from local_openfaas.pods.pod_state import PodView
from local_openfaas.pods.pod_watch import PodWatch
from local_openfaas.pods.pool import PodPool
from local_openfaas.pods.supervisor import PodSupervisor
from local_openfaas.runtime.scaling import ScalingPolicy
from local_openfaas.runtime.spec import FunctionSpec


class PodBackend:
    def __init__(self, reconciler: Reconciler, pods: PodWatch, pool: PodPool | None = None):
        self.namespace = reconciler.namespace
        self._reconciler, self._pods, self.pool = reconciler, pods, pool

    @classmethod
    async def start(cls, kubeconfig: Path, namespace: str, config: DeploymentConfig | None = None,
                    pool_size: int = 0, synced_timeout: float = 30.0) -> PodBackend:
        """The reconciler, the pods watch (and the pod pool) of `namespace`, running, once each has listed what
        exists."""
        reconciler = await Reconciler.connect(kubeconfig, namespace, config)
        await reconciler.start()
        pods = PodWatch(reconciler.kube)
        pool = PodPool(reconciler.kube, pool_size, config) if pool_size > 0 else None
        try:
            await reconciler.wait_synced(synced_timeout)
            await pods.start(synced_timeout)
            if pool is not None:
                await pool.start()
        except BaseException:
            if pool is not None:
                await pool.close()
            await pods.stop()
            await reconciler.stop()
            raise
        return cls(reconciler, pods, pool)

    async def prepare(self, spec: FunctionSpec) -> None:
        if spec.namespace != self.namespace:  # the binding watches only this namespace; this is a safeguard
            raise ValueError(f"the pods backend serves namespace {self.namespace}, not {spec.namespace}")
        if self.pool is not None and ScalingPolicy.from_labels(spec.labels).zero:
            await self.pool.ensure(spec.image)  # only functions that scale to zero have cold starts to hide

    def supervise(self, spec: FunctionSpec, prepared: None, replicas: int,
                  on_change: Callable[[PodSupervisor], None]) -> PodSupervisor:
        bridge = _FunctionBridge(self.pool, self._reconciler.kube, spec) if self.pool is not None else None
        return PodSupervisor(spec, self._pods, self._reconciler.scale, self._reconciler.replicas, replicas,
                             on_change, bridge)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        await self._pods.stop()
        await self._reconciler.stop()


class _FunctionBridge:
    """The pool as one function's supervisor uses it (supervisor.Bridge): reads the Function and its Secrets at
    the moment of the cold start, as its own pod would get them."""

    def __init__(self, pool: PodPool, kube: NamespaceClient, spec: FunctionSpec):
        self._pool, self._kube, self._spec = pool, kube, spec

    async def take(self) -> PodView | None:
        function, *found = await asyncio.gather(self._kube.function(self._spec.name),
                                                *(self._kube.secret(name) for name in self._spec.secrets))
        secrets = {name: secret for name, secret in zip(self._spec.secrets, found) if secret is not None}
        if function is None or len(secrets) < len(self._spec.secrets):
            return None  # deleted meanwhile, or a Secret missing: its own pod will say why it cannot start
        return await self._pool.take(function, secrets)

    async def retire(self, pod: PodView) -> None:
        await self._pool.retire(pod)

    def gone(self, pod: PodView) -> bool:
        return self._pool.gone(pod)
