"""Reconcilers: read the world, apply what the builders want, and say how it went. Handlers stay thin over these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..api import K8sModel
from ..builders.status import FunctionObservation, Verdict
from ..config import OperatorConfig
from ..kube import MODELSTORE, Kube
from ..stores import ModelStores


class EventSink(Protocol):
    def __call__(self, type: str, reason: str, message: str) -> None: ...


# (name, namespace) -> the ModelStore object, or None if there is none.
StoreLookup = Callable[[str, str], Awaitable[dict | None]]


@dataclass(frozen=True)
class Context:
    """What a reconcile works with. `lookup_store` defaults to a GET; the operator answers from its watch cache."""

    kube: Kube
    stores: ModelStores
    config: OperatorConfig
    emit: EventSink
    lookup_store: StoreLookup | None = None

    async def store_object(self, name: str, namespace: str) -> dict | None:
        if self.lookup_store is not None:
            return await self.lookup_store(name, namespace)
        return await self.kube.get(MODELSTORE, namespace, name)


@dataclass(frozen=True)
class Result:
    """A reconcile's outcome: the status to write (an API status model) and the verdict it tells."""

    status: K8sModel
    verdict: Verdict
    function: FunctionObservation | None = None  # what OpenFaaS reported, to notice when that changes


Reconciler = Callable[[Context, dict], Awaitable[Result]]
