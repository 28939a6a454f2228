"""MLFunction: a scikit-learn model served (or trained) as an OpenFaaS function. Reference: docs/api.md."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from . import cron
from .common import DNS_LABEL, Condition, DnsLabel, DnsSubdomain, K8sModel, ResourceRequirements, go_duration

Task = Literal["train", "predict"]
# The train function's allow-lists, copied: their home is functions/train/datasets.py (BUNDLED) and
# functions/train/estimators.py (CLASSIFIERS, REGRESSORS), in the train function's own image; the operator's image
# must not install numpy and scikit-learn to import them. tests/contracts/test_training_lists_contract.py fails when
# a copy differs from its home, or when the API server admits a dataset and estimator the train function refuses.
DATASETS = {
    "iris": "classification", "wine": "classification", "breast_cancer": "classification",
    "digits": "classification", "diabetes": "regression",
}
CLASSIFIERS = (
    "LogisticRegression", "RandomForestClassifier", "ExtraTreesClassifier", "GradientBoostingClassifier",
    "DecisionTreeClassifier", "KNeighborsClassifier", "SVC", "GaussianNB", "MLPClassifier",
)
REGRESSORS = (
    "LinearRegression", "Ridge", "Lasso", "ElasticNet", "RandomForestRegressor", "ExtraTreesRegressor",
    "GradientBoostingRegressor", "DecisionTreeRegressor", "KNeighborsRegressor", "SVR", "MLPRegressor",
)
Dataset = Literal[tuple(DATASETS)]  # type: ignore[valid-type]
REGRESSION_DATASETS = tuple(name for name, task in DATASETS.items() if task == "regression")
Estimator = Literal[CLASSIFIERS + REGRESSORS]  # type: ignore[valid-type]
# Environment the operator sets on functions; user-supplied env must not shadow it.
RESERVED_ENV = (
    "MODEL_NAME", "MODEL_VERSION", "TASK", "MODEL_STORE_URL", "MODEL_STORE_TOKEN", "MODEL_REFRESH_SECONDS",
    "TRAIN_DATASET", "TRAIN_ESTIMATOR", "TRAIN_PARAMS", "TRAIN_TEST_SIZE", "TRAIN_CALL_POLICY",
    "TRAIN_MAX_BODY_BYTES",
)
# Environment that decides what runs and how, not what the function does: the function template's own settings
# (functions/template/mlfunctions-python3: index.py, function_support.py), the OpenFaaS watchdog's (an image of
# one's own may run it) and what the shell and the dynamic loader read. Setting one would run other code than
# the image's, or move the function's listener, secrets or handler directory.
RUNTIME_ENV = (
    "FUNCTION_DIR", "OPENFAAS_SECRETS_DIR", "HOST", "PORT", "TMPDIR", "PATH", "HOME",
    "fprocess", "mode", "upstream_url", "http_upstream_url", "suppress_lock", "exec_timeout", "read_timeout",
    "write_timeout", "healthcheck_interval", "max_inflight", "jwt_auth", "jwt_auth_local", "jwt_auth_debug",
)
RUNTIME_ENV_PREFIXES = ("LD_", "PYTHON")  # LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT; PYTHONPATH, PYTHONHOME, ...
# What a caller of a train function may change in one request when the MLFunction allows it.
OVERRIDES = ("dataset", "estimator", "params", "testSize", "randomState", "data")
MAX_DATA_BYTES = 64 * 1024 * 1024  # the train function's own ceiling on a request body
Override = Literal[OVERRIDES]  # type: ignore[valid-type]
PARAM_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _param_names(bounds: dict[str, Any]) -> dict[str, Any]:
    for name in bounds:
        if not re.match(PARAM_NAME, name):
            raise ValueError(f"paramBounds: {name!r} is not a parameter name (letters, digits and _, at most 64)")
    return bounds
# The autoscaler of OpenFaaS (and the local runtime's) looks about once a second: a shorter idle time cannot be
# honoured, and 0s would scale a function to zero between two requests.
SCALE_TO_ZERO_AFTER_MIN = "1s"
ScaleToZeroAfter = go_duration("scaleToZeroAfter", SCALE_TO_ZERO_AFTER_MIN)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


class ModelRef(K8sModel):
    """Which model in the model store the function serves or trains."""

    name: DnsLabel = Field(description="The model's name in the model store (a DNS-1123 label, e.g. iris).")
    version: int | None = Field(
        None, ge=1,
        description="Pin this version (an integer >= 1). Omitted: a predict function always serves the newest "
                    "version; a train function always writes a new one.",
    )


class ParamBound(K8sModel):
    """What a caller may give one estimator parameter: a number within [minimum, maximum], or one of `values`."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": "has(self.values) != (has(self.minimum) || has(self.maximum))",
        "message": "give either minimum and/or maximum (a number) or values (strings), not both and not neither",
        "reason": "FieldValueInvalid",
    }, {
        "rule": "!has(self.minimum) || !has(self.maximum) || self.minimum <= self.maximum",
        "message": "minimum must not be greater than maximum", "fieldPath": ".minimum", "reason": "FieldValueInvalid",
    }]})

    minimum: float | None = Field(None, description="The smallest number a caller may give.")
    maximum: float | None = Field(None, description="The largest number a caller may give.")
    values: list[Annotated[str, StringConstraints(max_length=256), Field(description="One of them.")]] | None = Field(
        None, max_length=64, description="The strings a caller may give.")


class TrainingSpec(K8sModel):
    """How a train function builds the model. Required when task is train, forbidden when task is predict."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": (f"self.dataset in {_cel_list(REGRESSION_DATASETS)} ? self.estimator in {_cel_list(REGRESSORS)}"
                 f" : self.estimator in {_cel_list(CLASSIFIERS)}"),
        "message": f"estimator does not fit the dataset: {' and '.join(REGRESSION_DATASETS)} "
                   f"need{'s' if len(REGRESSION_DATASETS) == 1 else ''} a regressor ({', '.join(REGRESSORS)}); "
                   f"the other datasets need a classifier ({', '.join(CLASSIFIERS)})",
        "fieldPath": ".estimator",
        "reason": "FieldValueInvalid",
    }, {
        "rule": "!has(self.allowOverrides) || !('params' in self.allowOverrides) || "
                "(has(self.paramBounds) && size(self.paramBounds) > 0)",
        "message": "allowOverrides has params but paramBounds is empty: name each parameter a caller may set, "
                   "with its bounds",
        "fieldPath": ".paramBounds",
        "reason": "FieldValueRequired",
    }]})

    dataset: Dataset = Field(description="One of scikit-learn's bundled datasets: iris, wine, breast_cancer, "
                                         "digits (classification) or diabetes (regression).")
    estimator: Estimator = Field(description="The scikit-learn estimator class, from an allow-list: classifiers "
                                             f"{', '.join(CLASSIFIERS)}; regressors {', '.join(REGRESSORS)}.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Hyper-parameters passed to the estimator (e.g. {max_iter: 200}). Unknown ones fail the "
                    "training run with a message naming them.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    test_size: float = Field(0.2, gt=0, lt=1, description="Fraction of the dataset held out to compute the "
                                                          "metrics, strictly between 0 and 1 (default 0.2).")
    schedule: Annotated[str, AfterValidator(cron.check_cron_schedule)] | None = Field(
        None, max_length=cron.MAX_LENGTH,
        description='Retrain on this cron schedule, in UTC (five fields, e.g. "0 3 * * *" for 03:00 every day, '
                    "or @daily); the OpenFaaS cron-connector invokes the function then. Omitted: train only when "
                    "invoked.",
        json_schema_extra={"x-kubernetes-validations": [cron.CEL_RULE]},
    )
    allow_overrides: list[Annotated[Override, Field(description="One thing a caller may change.")]] = Field(
        default_factory=list, max_length=len(OVERRIDES),
        description="What a caller of the train function may change in one request: dataset, estimator, params "
                    "(only those named in paramBounds, within their bounds), testSize, randomState, and data (a "
                    "CSV table as the body, up to maxDataBytes). Omitted or empty: a call trains exactly what "
                    "this spec says.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    param_bounds: Annotated[dict[str, ParamBound], AfterValidator(_param_names)] = Field(
        default_factory=dict, max_length=64,
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": f"self.all(k, k.matches('{PARAM_NAME}'))",
            "message": "every key must be a parameter name (letters, digits and _, at most 64 characters)",
            "reason": "FieldValueInvalid"}]},
        description="The estimator parameters a caller may set when allowOverrides has params, each with its "
                    "bounds (e.g. {n_estimators: {minimum: 1, maximum: 500}}); any other parameter is refused.",
    )
    max_data_bytes: int = Field(
        1024 * 1024, ge=1, le=MAX_DATA_BYTES,
        description="The largest CSV table a caller may send when allowOverrides has data (default 1 MiB, at "
                    "most 64 MiB).")


class ScalingSpec(K8sModel):
    """How OpenFaaS scales the function (translated into its com.openfaas.scale.* labels)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        # has(): the rules also run on the CRD's `default: {}` for scaling, before nested defaults are applied.
        {"rule": "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
         "message": "minReplicas must not be greater than maxReplicas",
         "fieldPath": ".minReplicas", "reason": "FieldValueInvalid"},
        {"rule": "!has(self.scaleToZeroAfter) || (has(self.minReplicas) && self.minReplicas == 0)",
         "message": "scaleToZeroAfter is only allowed with minReplicas: 0 (scale to zero)",
         "fieldPath": ".scaleToZeroAfter", "reason": "FieldValueForbidden"},
    ]})

    min_replicas: int = Field(1, ge=0, le=1000, description="Fewest replicas (default 1); 0 turns on scale to zero.")
    max_replicas: int = Field(5, ge=1, le=1000,
                              description="Most replicas (default 5); at least 1 and at least minReplicas.")
    scale_to_zero_after: ScaleToZeroAfter | None = Field(  # type: ignore[valid-type]
        None,
        description='Idle time before scaling to zero, as a Go duration ("15m", "1h30m") of at least '
                    f"{SCALE_TO_ZERO_AFTER_MIN}. Only with minReplicas 0; omitted: OpenFaaS's default (15m).",
    )
    target: int = Field(50, ge=1, le=100000, description="Target load per replica for the autoscaler (default 50),"
                                                         " in the unit of the metric.")
    metric: Literal["rps", "capacity", "cpu"] = Field(
        "rps", description="What the autoscaler measures: rps (requests per second), capacity (in-flight "
                           "requests) or cpu (millicores). Default rps.",
    )


def _env_allowed(name: str) -> str:
    if name in RESERVED_ENV or name in RUNTIME_ENV or name.startswith(RUNTIME_ENV_PREFIXES):
        raise ValueError(ENV_MESSAGE)
    return name


ENV_MESSAGE = (f"the operator sets this variable, or it controls the function's runtime or loader: not allowed "
               f"are {', '.join(RESERVED_ENV + RUNTIME_ENV)} and names starting with "
               f"{' or '.join(RUNTIME_ENV_PREFIXES)}")


class EnvVar(K8sModel):
    """An environment variable for the function."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": (f"!(self.name in {_cel_list(RESERVED_ENV + RUNTIME_ENV)}) && "
                 + " && ".join(f"!self.name.startsWith('{p}')" for p in RUNTIME_ENV_PREFIXES)),
        "message": ENV_MESSAGE,
        "fieldPath": ".name",
        "reason": "FieldValueForbidden",
    }]})

    name: Annotated[str, AfterValidator(_env_allowed)] = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=256, description="Variable name.")
    value: str = Field("", max_length=32768, description="Variable value.")


class MLFunctionSpec(K8sModel):
    """What the user wants: a train or predict function for one model, its scaling and its runtime."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": "self.task == 'train' ? has(self.training) : !has(self.training)",
        "message": "training is required when task is train and must be left out when task is predict",
        "fieldPath": ".training",
        "reason": "FieldValueRequired",
    }]})

    task: Task = Field(description="train: fit the model and upload a new version to the model store. predict: "
                                   "serve predictions from the model.")
    model: ModelRef = Field(description="The model in the model store.")
    training: TrainingSpec | None = Field(None, description="How to train; required when task is train, "
                                                            "forbidden when task is predict.")
    scaling: ScalingSpec = Field(default_factory=ScalingSpec,  # type: ignore[arg-type]
                                 description="Autoscaling of the function.",
                                 json_schema_extra={"default": {}})
    resources: ResourceRequirements | None = Field(None, description="CPU and memory requests and limits for "
                                                                     "each replica.")
    image: str | None = Field(None, max_length=512, pattern=r"^[^\s]*$",
                              description="Run this image instead of the operator's default image for the task.")
    env: list[EnvVar] = Field(
        default_factory=list, max_length=64,
        description="Extra environment variables for the function. Not allowed: the names the operator sets "
                    f"({', '.join(RESERVED_ENV)}), those that control the runtime or the loader "
                    f"({', '.join(RUNTIME_ENV)}) and names starting with {' or '.join(RUNTIME_ENV_PREFIXES)}.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    model_store: DnsSubdomain | None = Field(
        None, description="Name of the ModelStore (in the operator's namespace) that holds the model. Omitted: "
                          "the operator's default store, `default`, which the operator creates if it is missing.",
    )


class FunctionRef(K8sModel):
    """Where the OpenFaaS Function is."""

    name: str = Field(description="The Function's name (also its name on the OpenFaaS gateway).")
    namespace: str = Field(description="The function namespace.")


class ModelStatus(K8sModel):
    """The model version in use."""

    name: str = Field(description="The model's name.")
    version: int | None = Field(None, description="The version a predict function serves or a train function "
                                                  "last wrote; empty while the store holds none.")


class TrainingRun(K8sModel):
    """One scheduled run of a train function, as the cron-connector reported it."""

    schedule_time: str = Field(description="When the schedule said to run (RFC 3339, UTC).")
    start_time: str | None = Field(None, description="When the cron-connector invoked the function.")
    result: Literal["Succeeded", "Failed"] = Field(
        description="Succeeded: the function answered 2xx (a new model version was written); Failed: any other "
                    "answer, or none.")
    status_code: int | None = Field(None, description="The HTTP status of the answer; empty when there was none.")
    duration_seconds: float | None = Field(None, description="How long the call took.")
    message: str | None = Field(None, description="Why it failed: the start of the answer, or the connection "
                                                  "error.")


class TrainingStatus(K8sModel):
    """The schedule of a train function with spec.training.schedule, and how its last scheduled run went."""

    schedule: str = Field(description="The schedule this status is about (spec.training.schedule).")
    time_zone: str = Field("UTC", description="The time zone the schedule runs in: UTC, as the cron-connector.")
    next_schedule_time: str | None = Field(None, description="When the next run is due (RFC 3339, UTC).")
    last_schedule_time: str | None = Field(None, description="When the last scheduled run was due; empty until "
                                                             "the first one.")
    last_successful_time: str | None = Field(None, description="When the last scheduled run that succeeded was "
                                                               "due.")
    last_run: TrainingRun | None = Field(None, description="The last scheduled run. Reported by the local "
                                                           "OpenFaaS's cron-connector; OpenFaaS's own reports none.")


class MLFunctionStatus(K8sModel):
    """What the operator observed and did (kstatus-compatible)."""

    observed_generation: int | None = Field(None, description="The metadata.generation last acted on.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling and Stalled (kstatus), plus finer-grained ones such as ModelAvailable.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    url: str | None = Field(None, description="The function's URL on the OpenFaaS gateway.")
    function: FunctionRef | None = Field(None, description="The OpenFaaS Function this MLFunction owns.")
    replicas: int | None = Field(None, description="Replicas OpenFaaS wants.")
    available_replicas: int | None = Field(None, description="Replicas ready to serve.")
    replicas_summary: str | None = Field(None, description='available/desired replicas, or "0 (idle)" when '
                                                           "scaled to zero.")
    model: ModelStatus | None = Field(None, description="The model and version in use.")
    training: TrainingStatus | None = Field(None, description="A train function on a schedule: its last and next "
                                                              "scheduled runs.")


DNS_LABEL_RULE = {
    "rule": f"self.metadata.name.size() <= 63 && self.metadata.name.matches('{DNS_LABEL}')",
    "message": "metadata.name must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters):"
               " it names the OpenFaaS function and is used in label values",
    "reason": "FieldValueInvalid",
}
