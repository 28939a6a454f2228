"""A ModelStore's verdicts and status, pure: Ready follows our own store's Deployment, or says an external store
answers; the status is built through ModelStoreStatus (the model the CRD's status schema is generated from)."""

from __future__ import annotations

from ..api.modelstore import GrantStatus, ModelStoreStatus
from .status import Verdict, merge_conditions, verdict_conditions


def deployment_verdict(deployment: dict, replicas: int) -> Verdict:
    name = f"Deployment {deployment['metadata']['namespace']}/{deployment['metadata']['name']}"
    if replicas == 0:
        # Off on purpose is a finished state, like a function scaled to zero: Ready, so that `kubectl wait`,
        # Flux and kstatus do not wait for replicas that were never asked for.
        return Verdict(ready=True, reason="Stopped", message="spec.replicas is 0: the store is stopped")
    status = deployment.get("status") or {}
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    available = status.get("availableReplicas", 0)
    if current and available >= replicas and status.get("updatedReplicas", 0) >= replicas:
        return Verdict(ready=True, reason="Available", message=f"{name} has {available} available replica(s)")
    # Polled with back-off: the operator does not watch Deployments (the chart grants it no list/watch on them).
    return Verdict.waiting_for("DeploymentNotAvailable", f"waiting for {name} to become available "
                                                         f"({available}/{replicas} replicas available)")


def reachable_verdict(url: str) -> Verdict:
    return Verdict(ready=True, reason="Reachable", message=f"external iris-server at {url} answers and accepts its "
                                                           "admin token")


def build_modelstore_status(body: dict, verdict: Verdict, now: str, *, url: str | None,
                            admin_token_secret: str | None, grants: list[GrantStatus] | None = None
                            ) -> ModelStoreStatus:
    """The status after a reconcile of `body` that ended in `verdict`; `url` and `admin_token_secret` are None
    (and removed from the status) when the spec is too broken to say them; `grants` None leaves the status's
    list as it is (the store could not be told)."""
    generation = body["metadata"].get("generation")
    previous = (body.get("status") or {}).get("conditions")
    fields: dict = {"observed_generation": generation, "url": url, "admin_token_secret": admin_token_secret,
                    "conditions": merge_conditions(previous, verdict_conditions(verdict), generation, now)}
    if grants is not None:
        fields["grants"] = grants
    return ModelStoreStatus(**fields)
