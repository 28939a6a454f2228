"""The pods backend (runtime/backend.py's interface): the faas_netes reconciler keeps each Function's Deployment
and Service and writes its status from the Deployment's; the pods watch says which pods are ready; a
PodSupervisor per function routes to them and sets the Deployment's count for the autoscaler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.faas_netes.reconciler import Reconciler
from local_openfaas.pods.pod_watch import PodWatch
from local_openfaas.pods.supervisor import PodSupervisor
from local_openfaas.runtime.spec import FunctionSpec


class PodBackend:
    def __init__(self, reconciler: Reconciler, pods: PodWatch):
        self.namespace = reconciler.namespace
        self._reconciler, self._pods = reconciler, pods

    @classmethod
    async def start(cls, kubeconfig: Path, namespace: str, config: DeploymentConfig | None = None,
                    synced_timeout: float = 30.0) -> PodBackend:
        """The reconciler and the pods watch of `namespace`, running, once both have listed what exists."""
        reconciler = await Reconciler.connect(kubeconfig, namespace, config)
        await reconciler.start()
        pods = PodWatch(reconciler.kube)
        try:
            await reconciler.wait_synced(synced_timeout)
            await pods.start(synced_timeout)
        except BaseException:
            await pods.stop()
            await reconciler.stop()
            raise
        return cls(reconciler, pods)

    async def prepare(self, spec: FunctionSpec) -> None:
        if spec.namespace != self.namespace:  # the binding watches only this namespace; this is a safeguard
            raise ValueError(f"the pods backend serves namespace {self.namespace}, not {spec.namespace}")

    def supervise(self, spec: FunctionSpec, prepared: None, replicas: int,
                  on_change: Callable[[PodSupervisor], None]) -> PodSupervisor:
        return PodSupervisor(spec, self._pods, self._reconciler.scale, self._reconciler.replicas, replicas,
                             on_change)

    async def close(self) -> None:
        await self._pods.stop()
        await self._reconciler.stop()
