"""The user-facing API (group mlfunctions.dev, version v1alpha1) as pydantic models: the one source of truth.
Also the part of OpenFaaS's Function API the operator reads (`openfaas`).

The CRDs in crds/ are generated from these classes by `mlfunctions_operator.crdgen`, and the operator parses what
it reads from the API server with the same classes, so the schema and the code cannot drift apart.
"""

from .common import Condition, ConditionStatus, K8sModel, ResourceRequirements
from .mlfunction import (
    CLASSIFIERS,
    OVERRIDES,
    REGRESSORS,
    RESERVED_ENV,
    RUNTIME_ENV,
    RUNTIME_ENV_PREFIXES,
    EnvVar,
    FunctionRef,
    MLFunctionSpec,
    MLFunctionStatus,
    ModelRef,
    ModelStatus,
    ParamBound,
    ScalingSpec,
    TrainingRun,
    TrainingSpec,
    TrainingStatus,
)
from .modelstore import (
    ExternalStoreSpec,
    ModelAccess,
    ModelStoreSpec,
    ModelStoreStatus,
    SecretKeyRef,
    StorageSpec,
)
from .openfaas import FunctionCondition, FunctionStatus

__all__ = [
    "CLASSIFIERS", "OVERRIDES", "REGRESSORS", "RESERVED_ENV", "RUNTIME_ENV", "RUNTIME_ENV_PREFIXES", "Condition",
    "ConditionStatus", "EnvVar", "ExternalStoreSpec", "FunctionCondition", "FunctionRef", "FunctionStatus",
    "K8sModel", "MLFunctionSpec", "MLFunctionStatus", "ModelAccess", "ModelRef", "ModelStatus", "ModelStoreSpec",
    "ModelStoreStatus", "ParamBound", "ResourceRequirements", "ScalingSpec", "SecretKeyRef", "StorageSpec",
    "TrainingRun", "TrainingSpec", "TrainingStatus",
]
