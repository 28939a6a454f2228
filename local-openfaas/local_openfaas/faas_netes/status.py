"""A Function's status from its Deployment's real status, written the way OpenFaaS Pro writes it. Pure.

The status shape (replicas, availableReplicas, unavailableReplicas, observedGeneration; conditions Ready, Healthy,
Reconciling, Stalled; scaled to zero is Ready=True, Healthy=False) is the one the process backend writes:
local_openfaas.runtime.status builds both, from a Snapshot of desired and available replicas.
"""

from __future__ import annotations

from local_openfaas.runtime.spec import DEFAULT_NAMESPACE, FunctionSpec, InvalidFunction, from_custom_object
from local_openfaas.runtime.status import function_status as _shared_status
from local_openfaas.runtime.supervisor import Snapshot


def snapshot(deployment: dict) -> Snapshot:
    """Desired replicas from the Deployment's spec, available ones from what its controller reported."""
    desired = (deployment.get("spec") or {}).get("replicas")
    status = deployment.get("status") or {}
    return Snapshot(replicas=1 if desired is None else int(desired),  # the API server's default is 1
                    available=int(status.get("availableReplicas") or 0), crashes=0)


def deployment_failure(deployment: dict) -> str:
    """Why the Deployment's controller gave up, if it did: the rollout passed its progress deadline, or replicas
    could not be created (a quota, an admission webhook). Empty while it is progressing or done."""
    for condition in (deployment.get("status") or {}).get("conditions") or ():
        stuck = condition.get("type") == "Progressing" and condition.get("status") == "False" and (
            condition.get("reason") == "ProgressDeadlineExceeded")
        failed = condition.get("type") == "ReplicaFailure" and condition.get("status") == "True"
        if stuck or failed:
            return f"{condition.get('reason', condition['type'])}: {condition.get('message', '')}".strip()
    return ""


def function_status(function: dict, deployment: dict | None, error: str, now: str) -> dict:
    """The Function's status: from `deployment` (its live object), or Stalled with `error` when faas-netes could
    not reconcile it (a missing Secret, a manifest the API server refused). `now` stamps changed conditions."""
    spec = _spec(function)
    failure = error or (deployment_failure(deployment) if deployment else "")
    observed = snapshot(deployment) if deployment is not None else None
    return _shared_status(spec, observed, failure, function.get("status"), now)


def _spec(function: dict) -> FunctionSpec:
    """The parsed Function; for one that does not parse, just enough of it to report why."""
    try:
        return from_custom_object(function)
    except InvalidFunction:
        meta, spec = function.get("metadata") or {}, function.get("spec") or {}
        return FunctionSpec(name=meta.get("name", ""), namespace=meta.get("namespace") or DEFAULT_NAMESPACE,
                            image=spec.get("image") or "", generation=int(meta.get("generation") or 0))
