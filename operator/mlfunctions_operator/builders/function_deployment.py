"""The gateway's FunctionDeployment (faas-provider's types.FunctionDeployment, the body of POST/PUT
/system/functions) for an MLFunction, what the gateway reports about it, and how far that report drifted.

Built from the same parts as the openfaas.com/v1 Function (function.function_parts): the same MLFunction gives the
same function whichever way it is deployed. OpenFaaS CE has no Function CRD; this is how it is deployed there.
"""

from __future__ import annotations

from ..api import MLFunctionSpec
from ..config import OperatorConfig
from ..naming import FunctionNames, Owner
from .function import function_parts
from .status import FunctionObservation

# The watchdog's process variable: faas-netes reports it among envVars, and envProcess is its source.
FPROCESS = "fprocess"


def build_function_deployment(owner: Owner, spec: MLFunctionSpec, names: FunctionNames, config: OperatorConfig,
                              store_url: str) -> dict:
    """Its labels are the Function's plus the owner's (the ownership check: the gateway has no object metadata
    of its own to carry them)."""
    parts = function_parts(spec, names, config, store_url)
    deployment = {
        "service": parts.name,
        "image": parts.image,
        "namespace": config.function_namespace,
        "envProcess": parts.handler,
        "envVars": parts.environment,
        "labels": {**owner.labels(), **parts.labels},
        "annotations": parts.annotations,
        "secrets": parts.secrets,
        "readOnlyRootFilesystem": True,
    }
    deployment.update(parts.resources)  # "limits"/"requests": {cpu, memory}, left out when empty like the Function's
    return deployment


def observe_deployment(status: dict | None) -> FunctionObservation:
    """GET /system/function/<name> (types.FunctionStatus): deployed functions report `replicas` (desired) and
    `availableReplicas`. OpenFaaS CE does not scale to zero, so a function is ready once a replica is available."""
    if status is None:
        return FunctionObservation(reported=False)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    ready = available >= 1
    message = "" if ready else f"{available}/{replicas} replicas available"
    return FunctionObservation(reported=True, ready=ready, replicas=replicas, available=available, message=message)


def drift(desired: dict, actual: dict) -> list[str]:
    """The FunctionDeployment fields the gateway reports differently from `desired` (empty: nothing to correct).
    Maps the provider extends (labels, annotations it adds itself) are compared on our keys only; envVars on all
    keys but the watchdog's process variable, so a variable someone added is drift too."""
    changed = []
    for field in ("image", "readOnlyRootFilesystem"):
        if actual.get(field, False if field == "readOnlyRootFilesystem" else None) != desired.get(field):
            changed.append(field)
    for field in ("labels", "annotations"):
        have = actual.get(field) or {}
        if any(have.get(k) != v for k, v in (desired.get(field) or {}).items()):
            changed.append(field)
    env = {k: v for k, v in (actual.get("envVars") or {}).items() if k != FPROCESS}
    if env != desired.get("envVars", {}):
        changed.append("envVars")
    if sorted(actual.get("secrets") or []) != sorted(desired.get("secrets") or []):
        changed.append("secrets")
    for field in ("limits", "requests"):
        # Providers that do not report resources leave the field out: nothing to compare with.
        if field in actual and (actual.get(field) or {}) != desired.get(field, {}):
            changed.append(field)
    return changed


def as_function_status(status: dict | None) -> dict | None:
    """The gateway's report in the shape of a Function's status (Ready condition, replicas), so the MLFunction's
    verdict and status are built the same way in both deployment modes."""
    if status is None:
        return None
    observation = observe_deployment(status)
    return {"status": {"replicas": observation.replicas, "availableReplicas": observation.available,
                       "conditions": [{"type": "Ready", "status": "True" if observation.ready else "False",
                                       "reason": "Available" if observation.ready else "NotAvailable",
                                       "message": observation.message}]}}
