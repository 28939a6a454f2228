"""Caps per tenant, pure: what one MLFunction may ask for, and what all of a namespace's MLFunctions may hold.

The caps are operator settings (OperatorConfig.max_*; none by default). Per MLFunction: maxReplicas, and the CPU
and memory each replica requests or is limited to; a replica that sets no limit gets the cap as its limit, so no
replica can use more. Per namespace: how many MLFunctions, and the sum of their maxReplicas and of what they
request at maxReplicas. A namespace's MLFunctions are counted oldest first (creation time, then name); one that
would pass a cap is refused and counts for nothing, so the ones admitted before it keep running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from pydantic import ValidationError

from ..api import MLFunctionSpec
from ..config import OperatorConfig
from .quantity import parse_quantity

RESOURCES = ("cpu", "memory")


class LimitExceeded(Exception):
    """A spec asks for more than a cap allows; `field` is the spec field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Usage:
    """The most one MLFunction takes: its maxReplicas, and the CPU and memory they request together."""

    replicas: int
    cpu: Decimal
    memory: Decimal

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.replicas + other.replicas, self.cpu + other.cpu, self.memory + other.memory)


ZERO = Usage(0, Decimal(0), Decimal(0))


@dataclass(frozen=True)
class Peer:
    """One MLFunction of a namespace, as the per-namespace caps count it."""

    uid: str
    name: str
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)
    usage: Usage


def peer_of(obj: dict, config: OperatorConfig) -> Peer | None:
    """An MLFunction object as a Peer; None when it is being deleted or its spec does not parse."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return None
    try:
        spec = MLFunctionSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return None
    return Peer(meta.get("uid", ""), meta.get("name", ""), meta.get("creationTimestamp") or "",
                usage_of(spec, config))


def effective_resources(spec: MLFunctionSpec, config: OperatorConfig) -> dict[str, dict[str, str]]:
    """The Function's requests and limits: the spec's, plus a per-replica cap as the limit where it sets none."""
    out: dict[str, dict[str, str]] = {}
    for field in ("requests", "limits"):
        amounts = getattr(spec.resources, field) if spec.resources else None
        values = {k: str(v) for k, v in (amounts.dump() if amounts else {}).items()}
        if values:
            out[field] = values
    for resource, cap in zip(RESOURCES, _replica_caps(config)):
        if cap is not None and resource not in out.get("limits", {}):
            out.setdefault("limits", {})[resource] = str(cap)
    return out


def usage_of(spec: MLFunctionSpec, config: OperatorConfig) -> Usage:
    resources = effective_resources(spec, config)
    per_replica = []
    for resource in RESOURCES:
        # What a replica reserves: its request, else its limit (Kubernetes requests the limit when no request is
        # given), else nothing.
        amount = resources.get("requests", {}).get(resource) or resources.get("limits", {}).get(resource) or 0
        per_replica.append(parse_quantity(amount))
    replicas = spec.scaling.max_replicas
    return Usage(replicas, per_replica[0] * replicas, per_replica[1] * replicas)


def check_function(spec: MLFunctionSpec, config: OperatorConfig) -> None:
    """Raises LimitExceeded when the spec passes a per-MLFunction cap."""
    cap = config.max_replicas_per_function
    if cap is not None and spec.scaling.max_replicas > cap:
        raise LimitExceeded("spec.scaling.maxReplicas",
                            f"spec.scaling.maxReplicas is {spec.scaling.max_replicas}; the operator allows at most "
                            f"{cap} per MLFunction (MLFUNCTIONS_MAX_REPLICAS_PER_FUNCTION)")
    for resource, cap in zip(RESOURCES, _replica_caps(config)):
        if cap is None:
            continue
        for field in ("requests", "limits"):
            amounts = getattr(spec.resources, field) if spec.resources else None
            value = getattr(amounts, resource) if amounts else None
            if value is not None and parse_quantity(value) > parse_quantity(cap):
                raise LimitExceeded(
                    f"spec.resources.{field}.{resource}",
                    f"spec.resources.{field}.{resource} is {value}; the operator allows at most {cap} per replica "
                    f"(MLFUNCTIONS_MAX_{resource.upper()}_PER_REPLICA)")


def check_namespace(namespace: str, me: Peer, peers: Iterable[Peer], config: OperatorConfig) -> None:
    """Raises LimitExceeded when `me`, counted after the older MLFunctions of its namespace that fit, passes a
    per-namespace cap. `peers` may include `me` (matched by uid)."""
    functions_cap = config.max_functions_per_namespace
    caps = (config.max_replicas_per_namespace,
            *(parse_quantity(c) if c is not None else None for c in (config.max_cpu_per_namespace,
                                                                      config.max_memory_per_namespace)))
    if functions_cap is None and all(cap is None for cap in caps):
        return
    ordered = sorted({p.uid: p for p in (*peers, me)}.values(), key=lambda p: (p.created, p.name))
    held, count = ZERO, 0
    for peer in ordered:
        total = held + peer.usage
        problem = _over(namespace, peer, count, held, total, functions_cap, caps, config)
        if peer.uid == me.uid:
            if problem:
                raise LimitExceeded(*problem)
            return
        if not problem:
            held, count = total, count + 1


def _over(namespace: str, peer: Peer, count: int, held: Usage, total: Usage, functions_cap: int | None,
          caps: tuple, config: OperatorConfig) -> tuple[str, str] | None:
    if functions_cap is not None and count + 1 > functions_cap:
        message = (f"metadata.namespace: namespace {namespace} may hold at most {functions_cap} MLFunctions "
                   f"(MLFUNCTIONS_MAX_FUNCTIONS_PER_NAMESPACE); {count} older ones hold them")
        return "metadata.namespace", message
    fields = (("spec.scaling.maxReplicas", "replicas", "REPLICAS", config.max_replicas_per_namespace),
              ("spec.resources.requests.cpu", "cpu", "CPU", config.max_cpu_per_namespace),
              ("spec.resources.requests.memory", "memory", "MEMORY", config.max_memory_per_namespace))
    for (field, what, setting, shown), cap in zip(fields, caps):
        if cap is not None and getattr(total, what) > cap:
            message = (f"{field} of {peer.name} would take namespace {namespace} to {_show(getattr(total, what))} "
                       f"{what} at maxReplicas; the operator allows {shown} there "
                       f"(MLFUNCTIONS_MAX_{setting}_PER_NAMESPACE); {count} older MLFunction(s) there hold "
                       f"{_show(getattr(held, what))}")
            return field, message
    return None


def _show(amount: Decimal | int) -> str:
    return f"{amount.normalize():f}" if isinstance(amount, Decimal) else str(amount)


def _replica_caps(config: OperatorConfig) -> tuple:
    return config.max_cpu_per_replica, config.max_memory_per_replica
