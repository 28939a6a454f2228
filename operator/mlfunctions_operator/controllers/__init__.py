"""Reconcilers: read the world, apply what the builders want, and say how it went. Handlers stay thin over these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..builders.status import FunctionObservation, Verdict
from ..config import OperatorConfig
from ..kube import Kube


class EventSink(Protocol):
    def __call__(self, type: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class Context:
    kube: Kube
    config: OperatorConfig
    emit: EventSink


@dataclass(frozen=True)
class Result:
    """A reconcile's outcome: the status to write and whether to try again soon (not only at the next resync)."""

    status: dict
    verdict: Verdict
    retry: bool
    function: FunctionObservation | None = None  # what OpenFaaS reported, to notice when that changes


def backoff(attempt: int, cap: float, base: float = 2.0) -> float:
    """Seconds before retry number `attempt` (0-based): 2, 4, 8, ... up to `cap`."""
    return min(cap, base * 2 ** min(attempt, 16))
