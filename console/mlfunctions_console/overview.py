"""One MLFunction as the pages show it: its state with the reason and what to do, its replicas (live, from the
gateway, when it has them), warm or scaled to zero, recent invocations and latency. Pure: plain dicts in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import advice
from .activity import Activity
from .gateway import FunctionMetrics


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


@dataclass
class FunctionView:
    namespace: str
    name: str
    task: str
    model: str
    pinned_version: int | None
    version: int | None  # status.model.version: what the operator last saw served or written
    state: str  # Ready | Stalled | Reconciling | Waiting
    reason: str
    message: str
    todo: str
    conditions: list[Condition]
    function_name: str | None
    function_namespace: str | None
    desired: int | None
    ready: int | None
    warmth: str  # warm | scaled to zero | starting | not running | unknown
    invocations: int | None
    invocations_seconds: float
    total_invocations: int | None
    latency_ms: float | None
    latency_source: str
    answered_version: int | None
    training: dict[str, Any] = field(default_factory=dict)
    scaling: dict[str, Any] = field(default_factory=dict)
    function_conditions: list[Condition] = field(default_factory=list)
    function_problem: str = ""  # the OpenFaaS Function cannot run: its reason and message

    @property
    def key(self) -> str:
        return f"{self.function_name}.{self.function_namespace}"

    @property
    def scaled_to_zero(self) -> bool:
        return self.warmth == "scaled to zero"


def _conditions(obj: dict | None) -> list[Condition]:
    return [
        Condition(c.get("type", ""), c.get("status", "Unknown"), c.get("reason", ""), c.get("message", ""))
        for c in ((obj or {}).get("status") or {}).get("conditions") or []
    ]


def _find(conditions: list[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


def state_of(mlfunction: dict) -> tuple[str, str, str]:
    """(state, reason, message) by kstatus' rules: Stalled wins, then Ready, then Reconciling."""
    conditions = _conditions(mlfunction)
    status = mlfunction.get("status") or {}
    generation = mlfunction.get("metadata", {}).get("generation")
    stalled, ready, reconciling = (_find(conditions, t) for t in ("Stalled", "Ready", "Reconciling"))
    if not status or not conditions:
        return (
            "Waiting",
            "NoStatus",
            (
                "the operator has not written a status yet: is it running? "
                "(kubectl -n mlfunctions-system get pods)"
            ),
        )
    if stalled and stalled.status == "True":
        return "Stalled", stalled.reason, stalled.message
    if status.get("observedGeneration") != generation:
        return ("Reconciling", "NewGeneration", f"the operator has not acted on generation {generation} yet")
    if ready and ready.status == "True":
        return "Ready", ready.reason, ready.message
    if reconciling and reconciling.status == "True":
        return "Reconciling", reconciling.reason, reconciling.message
    return "Reconciling", ready.reason if ready else "", ready.message if ready else ""


def function_problem(function: dict | None) -> str:
    """Why the OpenFaaS Function cannot run (its Stalled condition), or ''."""
    stalled = _find(_conditions(function), "Stalled")
    if stalled and stalled.status == "True":
        return f"{stalled.reason}: {stalled.message}"
    return ""


def build(
    mlfunction: dict,
    function: dict | None,
    metrics: FunctionMetrics | None,
    activity: Activity,
    live: bool = False,
) -> FunctionView:
    """`live`: `function` is the gateway's report read just now (gatewayAPI mode), which then wins over the
    MLFunction's status (written at the operator's last pass); a Function resource's status is only a fallback."""
    meta, spec = mlfunction["metadata"], mlfunction.get("spec") or {}
    status = mlfunction.get("status") or {}
    ref = status.get("function") or {}
    state, reason, message = state_of(mlfunction)
    fn_status = {k: v for k, v in ((function or {}).get("status") or {}).items() if v is not None}
    first, then = (fn_status, status) if live else (status, fn_status)
    desired = first.get("replicas", then.get("replicas"))
    ready = (
        metrics.ready_replicas
        if metrics and metrics.ready_replicas is not None
        else first.get("availableReplicas", then.get("availableReplicas"))
    )
    total = metrics.invocations if metrics else (function or {}).get("invocationCount") if live else None
    problem = function_problem(function)
    key = f"{ref.get('name')}.{ref.get('namespace')}"
    recent = activity.recent(key)
    latency, source = activity.median_ms(key), "median of the console's warm calls"
    if metrics and metrics.mean_seconds is not None:
        latency, source = metrics.mean_seconds * 1000, "mean at the gateway"
    todo = advice.for_reason(reason) if state in ("Stalled", "Reconciling") and reason else ""
    if state == "Waiting":
        todo = "Start the operator: MLFunctions get a status once it runs."
    return FunctionView(
        namespace=meta["namespace"],
        name=meta["name"],
        task=spec.get("task", "?"),
        model=(spec.get("model") or {}).get("name", "?"),
        pinned_version=(spec.get("model") or {}).get("version"),
        version=(status.get("model") or {}).get("version"),
        state=state,
        reason=reason,
        message=message,
        todo=todo,
        conditions=_conditions(mlfunction),
        function_name=ref.get("name"),
        function_namespace=ref.get("namespace"),
        desired=desired,
        ready=ready,
        warmth=_warmth(desired, ready, reason, problem),
        invocations=recent.invocations,
        invocations_seconds=recent.seconds,
        total_invocations=int(total) if total is not None else None,
        latency_ms=latency,
        latency_source=source,
        answered_version=activity.last_version(key),
        training=spec.get("training") or {},
        scaling=spec.get("scaling") or {},
        function_conditions=_conditions(function),
        function_problem=problem,
    )


def _warmth(desired: int | None, ready: int | None, reason: str, problem: str) -> str:
    if problem:
        return "not running"
    if ready:
        return "warm"
    if desired == 0 or reason == "ScaledToZero":
        return "scaled to zero"
    if desired:
        return "starting"
    return "unknown"
