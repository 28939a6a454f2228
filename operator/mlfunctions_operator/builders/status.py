"""Status as kstatus reads it: observedGeneration plus Ready, Reconciling and Stalled conditions.

Conditions keep their lastTransitionTime while their status does not change, so `kubectl wait` and GitOps tools see
real transitions only. Ready is True or False with a reason; Reconciling and Stalled are True only while work is
under way or blocked on the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..api import K8sModel
from .training_status import scheduled_run_record

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
MODEL_AVAILABLE = "ModelAvailable"


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one reconcile. `reason` and `message` describe it for whichever condition is True.

    `retry`: try again after a back-off rather than only at the next resync. Set for failures that may clear by
    themselves (a store that is down, an API error, a missing object someone may create); not for waits that a
    watch ends (OpenFaaS reporting the Function) or that only the user can end (an invalid spec).
    """

    ready: bool
    reason: str
    message: str
    reconciling: bool = False
    stalled: bool = False
    retry: bool = False

    @classmethod
    def stalled_on(cls, reason: str, message: str, retry: bool = True) -> Verdict:
        """Cannot progress until something changes (the message names what)."""
        return cls(ready=False, reason=reason, message=message, stalled=True, retry=retry)

    @classmethod
    def waiting_for(cls, reason: str, message: str, retry: bool = True) -> Verdict:
        """Work under way, or waiting on something that resolves by itself."""
        return cls(ready=False, reason=reason, message=message, reconciling=True, retry=retry)


@dataclass(frozen=True)
class ConditionValue:
    type: str
    status: bool | None  # None: Unknown
    reason: str
    message: str = ""


def verdict_conditions(verdict: Verdict) -> list[ConditionValue]:
    return [
        ConditionValue(READY, verdict.ready, verdict.reason, verdict.message),
        ConditionValue(RECONCILING, verdict.reconciling,
                       verdict.reason if verdict.reconciling else "Reconciled",
                       verdict.message if verdict.reconciling else ""),
        ConditionValue(STALLED, verdict.stalled, verdict.reason if verdict.stalled else "NotStalled",
                       verdict.message if verdict.stalled else ""),
    ]


def merge_conditions(previous: list[dict] | None, values: list[ConditionValue], generation: int | None,
                     now: str) -> list[dict]:
    """The new condition list; a condition whose status is unchanged keeps its lastTransitionTime."""
    before = {c.get("type"): c for c in previous or []}
    merged = []
    for value in values:
        status = "Unknown" if value.status is None else "True" if value.status else "False"
        old = before.get(value.type)
        transition = old["lastTransitionTime"] if old and old.get("status") == status and \
            old.get("lastTransitionTime") else now
        condition = {"type": value.type, "status": status, "reason": value.reason, "message": value.message,
                     "lastTransitionTime": transition}
        if generation is not None:
            condition["observedGeneration"] = generation
        merged.append(condition)
    return merged


# -- writing a status ----------------------------------------------------------------------------------------

def status_patch(status: K8sModel) -> dict:
    """The merge patch that writes `status`: every field the builder set, and null for a field it set to None
    (which removes it); a field it left unset stays as it is."""
    return status.model_dump(by_alias=True, mode="json", exclude_unset=True)


def merge_patched(current: dict, patch: dict) -> dict:
    """`current` after a JSON merge patch (RFC 7386): tells whether writing the patch would change anything."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            before = current.get(key)
            merged[key] = merge_patched(before if isinstance(before, dict) else {}, value)
        else:
            merged[key] = value
    return merged


# -- the OpenFaaS Function's own status ----------------------------------------------------------------------

@dataclass(frozen=True)
class FunctionObservation:
    """What OpenFaaS reports about a Function. `reported` is False while it has said nothing about the current
    generation (no OpenFaaS controller yet, or it has not caught up)."""

    reported: bool
    ready: bool = False
    replicas: int | None = None
    available: int | None = None
    message: str = ""
    scheduled_runs: str | None = None  # the cron-connector's record (training_status.py): a new run is news

    @property
    def scaled_to_zero(self) -> bool:
        return self.ready and not self.replicas and not self.available


def observe_function(function: dict | None) -> FunctionObservation:
    if not function:
        return FunctionObservation(reported=False)
    runs = scheduled_run_record(function)
    status = function.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    observed = status.get("observedGeneration")
    generation = (function.get("metadata") or {}).get("generation")
    if "Ready" not in conditions or (observed is not None and generation is not None and observed < generation):
        return FunctionObservation(reported=False, replicas=status.get("replicas"),
                                   available=status.get("availableReplicas"), scheduled_runs=runs)
    ready = conditions["Ready"]
    stalled = conditions.get("Stalled")
    if stalled and stalled.get("status") == "True":
        message = stalled.get("message") or stalled.get("reason") or ""
    elif ready.get("status") != "True":
        message = ready.get("message") or ready.get("reason") or ""
    else:
        message = ""
    return FunctionObservation(
        reported=True,
        ready=ready.get("status") == "True",
        replicas=status.get("replicas", 0),
        available=status.get("availableReplicas", 0),
        message=message,
        scheduled_runs=runs,
    )


def function_verdict(function_ref: str, observation: FunctionObservation) -> Verdict:
    # The operator watches Functions: no polling while OpenFaaS works, a status change wakes the reconcile.
    if not observation.reported:
        return Verdict.waiting_for("FunctionNotReady",
                                   f"Function {function_ref} applied; waiting for OpenFaaS to report its status",
                                   retry=False)
    if observation.scaled_to_zero:
        return Verdict(ready=True, reason="ScaledToZero", message=f"Function {function_ref} is scaled to zero; "
                                                                   "the gateway starts it on the next request")
    if observation.ready:
        return Verdict(ready=True, reason="Deployed", message=f"Function {function_ref} is deployed "
                                                              f"({observation.available}/{observation.replicas} "
                                                              "replicas available)")
    detail = f": {observation.message}" if observation.message else ""
    return Verdict.waiting_for("FunctionNotReady", f"Function {function_ref} is not ready{detail}", retry=False)


def replicas_summary(observation: FunctionObservation) -> str:
    if not observation.reported and observation.replicas is None:
        return ""
    if observation.scaled_to_zero:
        return "0 (idle)"
    return f"{observation.available or 0}/{observation.replicas or 0}"
