"""What a function is, in the two shapes OpenFaaS speaks: the Function resource (openfaas.com/v1) and the
gateway's FunctionDeployment / FunctionStatus JSON (faas-provider types). Pure conversions, no IO."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

GROUP, VERSION, PLURAL, KIND = "openfaas.com", "v1", "functions", "Function"
DEFAULT_NAMESPACE = "openfaas-fn"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class InvalidFunction(ValueError):
    """A deployment request or Function resource that cannot be run; the message says what was expected."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    namespace: str
    image: str
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    limits: dict[str, str] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    env_process: str = ""
    read_only_root_filesystem: bool = False
    generation: int = 0
    created_at: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    def runs_like(self, other: FunctionSpec) -> bool:
        """Whether replicas started from `other` run exactly what this spec asks for (labels only steer scaling)."""
        return (self.image, self.environment, self.secrets, self.env_process, self.limits) == (
            other.image, other.environment, other.secrets, other.env_process, other.limits)


def _string_map(value, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidFunction(f"{what}: expected an object of string values")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def from_custom_object(obj: dict) -> FunctionSpec:
    """A Function resource as the API server returns it."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    name = spec.get("name") or meta.get("name") or ""
    if not _DNS1123_LABEL.match(name):
        raise InvalidFunction(f"spec.name {name!r}: expected a DNS-1123 label")
    image = spec.get("image") or ""
    if not image:
        raise InvalidFunction("spec.image: required")
    return FunctionSpec(
        name=name,
        namespace=meta.get("namespace") or DEFAULT_NAMESPACE,
        image=image,
        environment=_string_map(spec.get("environment"), "spec.environment"),
        labels=_string_map(spec.get("labels"), "spec.labels"),
        annotations=_string_map(spec.get("annotations"), "spec.annotations"),
        secrets=tuple(spec.get("secrets") or ()),
        limits=_string_map(spec.get("limits"), "spec.limits"),
        requests=_string_map(spec.get("requests"), "spec.requests"),
        constraints=tuple(spec.get("constraints") or ()),
        read_only_root_filesystem=bool(spec.get("readOnlyRootFilesystem", False)),
        generation=int(meta.get("generation") or 0),
        created_at=meta.get("creationTimestamp") or "",
    )


def to_custom_object(spec: FunctionSpec) -> dict:
    """The Function resource that asks for `spec` (what the gateway's deploy API writes)."""
    body: dict = {"name": spec.name, "image": spec.image}
    for key, value in (("environment", spec.environment), ("labels", spec.labels),
                       ("annotations", spec.annotations), ("limits", spec.limits), ("requests", spec.requests)):
        if value:
            body[key] = dict(value)
    if spec.secrets:
        body["secrets"] = list(spec.secrets)
    if spec.constraints:
        body["constraints"] = list(spec.constraints)
    if spec.read_only_root_filesystem:
        body["readOnlyRootFilesystem"] = True
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
            "metadata": {"name": spec.name, "namespace": spec.namespace}, "spec": body}


class _Resources(BaseModel):
    model_config = ConfigDict(extra="ignore")
    memory: str | None = None
    cpu: str | None = None


class FunctionDeployment(BaseModel):
    """faas-provider's FunctionDeployment: the body of POST/PUT /system/functions (faas-cli deploy)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    service: str
    image: str = Field(min_length=1)
    namespace: str = ""
    envProcess: str = ""
    envVars: dict[str, str] | None = None
    constraints: list[str] | None = None
    secrets: list[str] | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    limits: _Resources | None = None
    requests: _Resources | None = None
    readOnlyRootFilesystem: bool = False

    @field_validator("service")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS1123_LABEL.match(value) or len(value) > 63:
            raise ValueError("expected a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters")
        return value


def from_deployment(payload: object, default_namespace: str = DEFAULT_NAMESPACE) -> FunctionSpec:
    """A FunctionDeployment JSON body; raises InvalidFunction naming every bad field."""
    try:
        request = FunctionDeployment.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors())
        raise InvalidFunction(f"invalid FunctionDeployment: {problems}") from None

    def resources(value: _Resources | None) -> dict[str, str]:
        return {k: v for k, v in (value.model_dump() if value else {}).items() if v}

    return FunctionSpec(
        name=request.service,
        namespace=request.namespace or default_namespace,
        image=request.image,
        environment=dict(request.envVars or {}),
        labels=dict(request.labels or {}),
        annotations=dict(request.annotations or {}),
        secrets=tuple(request.secrets or ()),
        limits=resources(request.limits),
        requests=resources(request.requests),
        constraints=tuple(request.constraints or ()),
        env_process=request.envProcess,
        read_only_root_filesystem=request.readOnlyRootFilesystem,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def to_function_status(spec: FunctionSpec, replicas: int, available: int, invocations: int) -> dict:
    """faas-provider's FunctionStatus: one item of GET /system/functions (faas-cli list / describe)."""
    status: dict = {
        "name": spec.name,
        "image": spec.image,
        "namespace": spec.namespace,
        "envProcess": spec.env_process,
        "envVars": dict(spec.environment),
        "labels": dict(spec.labels),
        "annotations": dict(spec.annotations),
        "secrets": list(spec.secrets),
        "constraints": list(spec.constraints),
        "invocationCount": invocations,
        "replicas": replicas,
        "availableReplicas": available,
        "readOnlyRootFilesystem": spec.read_only_root_filesystem,
    }
    if spec.limits:
        status["limits"] = dict(spec.limits)
    if spec.requests:
        status["requests"] = dict(spec.requests)
    if spec.created_at:
        status["createdAt"] = spec.created_at
    return status
