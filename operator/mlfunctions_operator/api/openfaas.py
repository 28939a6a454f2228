"""The status of an OpenFaaS Function (openfaas.com/v1), as OpenFaaS Standard/Enterprise writes it and the operator
reads it: the one home of that contract's shape (field names, condition types and what they mean).

Its writers live elsewhere and keep their own copy: OpenFaaS itself, the local OpenFaaS
(local-openfaas/local_openfaas/runtime/status.py, which its faas_netes backend uses too) and the Function CRD that
tests and `make up` install (hack/crds/openfaas.com_functions.yaml). tests/contracts/test_function_status_contract.py
holds the local OpenFaaS's statuses and that CRD's schema to these models, and feeds what the local OpenFaaS writes,
through the API server, into the operator's reader to check the verdict.
"""

from __future__ import annotations

from pydantic import Field

from .common import ConditionStatus, K8sModel

# True while the function serves requests, scaled to zero included (the gateway starts a replica on demand).
FUNCTION_READY = "Ready"
# True when every desired replica is available; False while scaled to zero or degraded.
FUNCTION_HEALTHY = "Healthy"
# True while OpenFaaS works towards the desired replicas.
FUNCTION_RECONCILING = "Reconciling"
# True when OpenFaaS cannot deploy the function as it is (a bad image, a crash loop); its message says why.
FUNCTION_STALLED = "Stalled"
FUNCTION_CONDITIONS = (FUNCTION_READY, FUNCTION_HEALTHY, FUNCTION_RECONCILING, FUNCTION_STALLED)


class FunctionCondition(K8sModel):
    """One condition, in the shape of metav1.Condition; OpenFaaS may leave out all but type and status."""

    type: str = Field(description="Ready, Healthy, Reconciling or Stalled.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field("", description="A CamelCase word for the last transition.")
    message: str = Field("", description="What happened, for humans.")
    last_transition_time: str | None = Field(None, description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(None, description="The Function's generation it was computed for.")


class FunctionStatus(K8sModel):
    """What OpenFaaS observed. Until observedGeneration reaches the Function's metadata.generation, the rest
    describes an older spec."""

    observed_generation: int | None = Field(None, description="The metadata.generation OpenFaaS last acted on.")
    replicas: int | None = Field(None, description="Replicas OpenFaaS wants (0 when scaled to zero).")
    available_replicas: int | None = Field(None, description="Replicas ready to serve requests.")
    unavailable_replicas: int | None = Field(None, description="Desired replicas not ready yet.")
    conditions: list[FunctionCondition] = Field(default_factory=list, description="Ready, Healthy, Reconciling "
                                                                                  "and Stalled.")

    def condition(self, type_: str) -> FunctionCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)
