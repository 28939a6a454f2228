"""The provider interface of the /system API (faas-provider's deploy/update/delete) and its errors: who keeps the
deployments. Without a cluster the runtime itself does (LocalProvider); on a cluster, Function resources do
(kube_provider.KubeProvider). The gateway translates the errors into HTTP answers."""

from __future__ import annotations

from typing import Protocol

from local_openfaas.runtime.runtime import FunctionNotFound, FunctionRuntime
from local_openfaas.runtime.spec import FunctionSpec


class FunctionExists(Exception):
    """A deploy of a function that is deployed already (faas-cli updates with PUT)."""


class ProviderUnavailable(Exception):
    """Where deployments are kept (the control plane) cannot be reached."""


class Provider(Protocol):
    """Carries out the deploy/update/delete calls of the /system API. Besides the errors named here, any of them
    may raise spec.InvalidFunction (the request cannot be deployed) and ProviderUnavailable."""

    async def deploy(self, spec: FunctionSpec) -> None: ...      # FunctionExists
    async def update(self, spec: FunctionSpec) -> None: ...      # FunctionNotFound
    async def delete(self, namespace: str, name: str) -> None: ...  # FunctionNotFound


class LocalProvider:
    """Without a cluster: deployments live in the runtime itself."""

    def __init__(self, runtime: FunctionRuntime):
        self.runtime = runtime

    async def deploy(self, spec: FunctionSpec) -> None:
        if spec.key in self.runtime.functions:
            raise FunctionExists(f"function {spec.name} already exists in namespace {spec.namespace}")
        await self.runtime.apply(spec)

    async def update(self, spec: FunctionSpec) -> None:
        self.runtime.get(spec.namespace, spec.name)
        await self.runtime.apply(spec)

    async def delete(self, namespace: str, name: str) -> None:
        if not await self.runtime.remove(namespace, name):
            raise FunctionNotFound(f"function {name} not found in namespace {namespace}")
