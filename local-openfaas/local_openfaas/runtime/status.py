"""A Function's status the way OpenFaaS Pro's operator writes it: replica counts and the conditions Ready,
Healthy, Reconciling and Stalled. A function scaled to zero is Ready=True and Healthy=False. Pure."""

from __future__ import annotations

from local_openfaas.runtime.spec import FunctionSpec
from local_openfaas.runtime.supervisor import CRASH_LOOP_AFTER, Snapshot


def function_status(spec: FunctionSpec, snapshot: Snapshot | None, error: str, previous: dict | None,
                    now: str, preparing: bool = False) -> dict:
    desired = snapshot.replicas if snapshot else 0
    available = snapshot.available if snapshot else 0
    if preparing and snapshot is None:
        message = f"preparing image {spec.image} (building its virtualenv the first time)"
        conditions = {
            "Ready": ("False", "PreparingImage", message),
            "Healthy": ("False", "PreparingImage", message),
            "Reconciling": ("True", "PreparingImage", message),
            "Stalled": ("False", "Progressing", ""),
        }
    elif error:
        conditions = {
            "Ready": ("False", "DeploymentFailed", error),
            "Healthy": ("False", "DeploymentFailed", error),
            "Reconciling": ("False", "DeploymentFailed", ""),
            "Stalled": ("True", "DeploymentFailed", error),
        }
    else:
        crash_looping = snapshot is not None and snapshot.crashes >= CRASH_LOOP_AFTER and available == 0
        last_error = snapshot.last_error if snapshot else ""
        if desired == 0 and available == 0:
            ready = ("True", "ScaledToZero", "scaled to zero; the next request starts a replica")
            healthy = ("False", "ScaledToZero", "no replicas are running")
        elif available >= 1:  # includes the moment between "scale to zero" and the last replica stopping
            ready = ("True", "Available", f"{available}/{desired} replicas available")
            healthy = ("True", "Available", "") if available >= desired else (
                "False", "Degraded", f"{available}/{desired} replicas available")
        else:
            reason = "CrashLoopBackOff" if crash_looping else "Starting"
            ready = ("False", reason, last_error or "waiting for a replica to become healthy")
            healthy = ("False", reason, last_error or "no replica is healthy yet")
        conditions = {
            "Ready": ready,
            "Healthy": healthy,
            "Reconciling": ("True", "Scaling", f"{available}/{desired} replicas available")
            if available != desired and not crash_looping else ("False", "Reconciled", ""),
            "Stalled": ("True", "CrashLoopBackOff", last_error) if crash_looping else ("False", "Progressing", ""),
        }
    return {
        "observedGeneration": spec.generation,
        "replicas": desired,
        "availableReplicas": available,
        "unavailableReplicas": max(0, desired - available),
        "conditions": _conditions(conditions, previous, now, spec.generation),
    }


def _conditions(wanted: dict[str, tuple[str, str, str]], previous: dict | None, now: str,
                generation: int) -> list[dict]:
    """metav1.Condition entries; lastTransitionTime only moves when a condition's status changes."""
    before = {c["type"]: c for c in (previous or {}).get("conditions", [])}
    result = []
    for kind, (status, reason, message) in wanted.items():
        old = before.get(kind)
        changed = old is None or old.get("status") != status
        result.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "observedGeneration": generation,
                       "lastTransitionTime": now if changed else old["lastTransitionTime"]})
    return result
