"""Building blocks shared by the MLFunction and ModelStore APIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

import durationpy
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# Kubernetes' own validation patterns (apimachinery validation.go), so the CRD rejects what Kubernetes would.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
# Go's time.ParseDuration grammar, the one CEL's duration() and OpenFaaS read. The local runtime holds its
# zero-duration label to the same pattern (local-openfaas/local_openfaas/runtime/scaling.py); one table of cases in
# tests/contracts/test_durations_contract.py drives this model, the CRD on the API server and the runtime.
GO_DURATION = r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"
# A Go time.Duration is an int64 count of nanoseconds (about 2562047h); CEL's duration() refuses more.
GO_DURATION_MAX = timedelta(microseconds=-(-(2**63 - 1) // 1000))

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
DnsSubdomain = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
# A resource quantity ("100m", "128Mi", 1): an int-or-string in the CRD, exactly like core/v1 Quantity.
Quantity = int | Annotated[str, StringConstraints(pattern=QUANTITY)]


def go_duration(field: str, minimum: str) -> object:
    """A Go duration ("15m", "1h30m") of at least `minimum`: the CRD checks it with CEL's duration(), and the
    operator with durationpy (more lenient than Go, hence the pattern first) when it reads the object back."""
    least = durationpy.from_str(minimum)
    message = f"{field} must be a Go duration of at least {minimum}, such as 30s, 15m or 1h30m"

    def check(text: str) -> str:
        try:
            value = durationpy.from_str(text)
        except (ValueError, OverflowError):
            raise ValueError(message) from None
        if not least <= value <= GO_DURATION_MAX:
            raise ValueError(message)
        return text

    # Only a string that has the grammar reaches duration(): the pattern's own error is the clearer message.
    rule = {"rule": f"!self.matches(r'{GO_DURATION}') || duration(self) >= duration('{minimum}')",
            "message": message, "reason": "FieldValueInvalid"}
    return Annotated[str, Field(pattern=GO_DURATION, max_length=32,
                                json_schema_extra={"x-kubernetes-validations": [rule]}), AfterValidator(check)]


class K8sModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored (the API server prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def dump(self) -> dict:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ComputeResources(K8sModel):
    """CPU and memory, the two resources OpenFaaS passes on to a function's container."""

    cpu: Quantity | None = Field(None, description='CPU, as a Kubernetes quantity ("100m", "0.5", 1).')
    memory: Quantity | None = Field(None, description='Memory, as a Kubernetes quantity ("128Mi", "1Gi").')


def _not_above(field: str) -> dict:
    return {
        "rule": (f"!has(self.requests) || !has(self.limits) || !has(self.requests.{field}) || "
                 f"!has(self.limits.{field}) || "
                 f"quantity(string(self.requests.{field})).compareTo(quantity(string(self.limits.{field}))) <= 0"),
        "message": f"requests.{field} must not be greater than limits.{field}",
        "fieldPath": f".requests.{field}",
        "reason": "FieldValueInvalid",
    }


class ResourceRequirements(K8sModel):
    """Compute resources for the container, the same shape as a container's `resources` (cpu and memory only)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_not_above("cpu"),
                                                                              _not_above("memory")]})

    requests: ComputeResources | None = Field(None, description="What the scheduler reserves for each replica.")
    limits: ComputeResources | None = Field(None, description="The most each replica may use.")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(K8sModel):
    """One aspect of the object's state, in the shape of metav1.Condition (kstatus-compatible)."""

    type: str = Field(description="Condition type: Ready, Reconciling or Stalled (or a finer-grained one).",
                      max_length=316)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase word for the condition's last transition.",
                        pattern=CONDITION_REASON, max_length=1024)
    message: str = Field("", description="What happened, for humans; names the field or object at fault.",
                         max_length=32768)
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).",
                                      json_schema_extra={"format": "date-time"})
    observed_generation: int | None = Field(None, ge=0,
                                            description="The metadata.generation this condition was computed for.")
