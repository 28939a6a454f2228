"""Reconcilers: read the world, apply what the builders want, and say how it went. Handlers stay thin over these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..api import K8sModel
from ..builders.limits import Peer, peer_of
from ..builders.status import FunctionObservation, Verdict
from ..children import CachedRead
from ..config import OperatorConfig
from ..gateway_client import GatewayClient
from ..kube import MLFUNCTION, MODELSTORE, Kube
from ..stores import ModelStores


class EventSink(Protocol):
    def __call__(self, type: str, reason: str, message: str) -> None: ...


# (name, namespace) -> the ModelStore object, or None if there is none.
StoreLookup = Callable[[str, str], Awaitable[dict | None]]
# namespace -> its MLFunctions as the per-namespace caps count them.
PeerLookup = Callable[[str], Awaitable[list[Peer]]]


@dataclass(frozen=True)
class Context:
    """What a reconcile works with. The lookups default to requests; the operator answers them from its watch
    cache (kopf indexes)."""

    kube: Kube
    stores: ModelStores
    config: OperatorConfig
    emit: EventSink
    lookup_store: StoreLookup | None = None
    lookup_peers: PeerLookup | None = None
    gateway: GatewayClient | None = None  # gatewayAPI mode; None: one per configured gateway
    cached_children: CachedRead | None = None  # the watch of the function namespace's children; None: requests

    async def store_object(self, name: str, namespace: str) -> dict | None:
        if self.lookup_store is not None:
            return await self.lookup_store(name, namespace)
        return await self.kube.get(MODELSTORE, namespace, name)

    async def namespace_peers(self, namespace: str) -> list[Peer]:
        """The MLFunctions of `namespace`, for its caps (none asked for when no per-namespace cap is set)."""
        if not self.config.limits_namespaces:
            return []
        if self.lookup_peers is not None:
            return await self.lookup_peers(namespace)
        found = (peer_of(obj, self.config) for obj in await self.kube.list(MLFUNCTION, namespace))
        return [peer for peer in found if peer is not None]


@dataclass(frozen=True)
class Result:
    """A reconcile's outcome: the status to write (an API status model) and the verdict it tells."""

    status: K8sModel
    verdict: Verdict
    function: FunctionObservation | None = None  # what OpenFaaS reported, to notice when that changes


Reconciler = Callable[[Context, dict], Awaitable[Result]]
