"""The OpenFaaS Function (openfaas.com/v1) for an MLFunction."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..api import MLFunctionSpec, TrainingSpec
from ..config import OperatorConfig
from ..naming import LABEL_MODEL, LABEL_TASK, FunctionNames, Owner
from .common import metadata
from .credentials import INVOKE_DIGEST_KEY
from .limits import effective_resources

SCALE = "com.openfaas.scale"


def scaling_labels(spec: MLFunctionSpec) -> dict[str, str]:
    """OpenFaaS' autoscaler reads these labels (values are strings). Scale to zero is not `scale.min: 0`: OpenFaaS
    keeps min >= 1 for scaling up and lets its idler take the function to zero when `scale.zero` is true."""
    scaling = spec.scaling
    to_zero = scaling.min_replicas == 0
    labels = {
        f"{SCALE}.min": str(max(scaling.min_replicas, 1)),
        f"{SCALE}.max": str(scaling.max_replicas),
        f"{SCALE}.zero": "true" if to_zero else "false",
        f"{SCALE}.target": str(scaling.target),
        f"{SCALE}.type": scaling.metric,
    }
    if to_zero and scaling.scale_to_zero_after:
        labels[f"{SCALE}.zero-duration"] = scaling.scale_to_zero_after
    return labels


def environment(spec: MLFunctionSpec, config: OperatorConfig, store_url: str) -> dict[str, str]:
    """User env first, then what the operator sets (the CRD forbids users to set those names; ours win anyway)."""
    env = {e.name: e.value for e in spec.env}
    env.update({
        "MODEL_NAME": spec.model.name,
        "MODEL_VERSION": "" if spec.model.version is None else str(spec.model.version),
        "TASK": spec.task,
        "MODEL_STORE_URL": store_url,
    })
    if spec.task == "train":
        assert spec.training is not None  # guaranteed by the CRD's rule and MLFunctionSpec
        env.update({
            "TRAIN_DATASET": spec.training.dataset,
            "TRAIN_ESTIMATOR": spec.training.estimator,
            "TRAIN_PARAMS": json.dumps(spec.training.params, sort_keys=True, separators=(",", ":")),
            "TRAIN_TEST_SIZE": repr(spec.training.test_size),
            "TRAIN_CALL_POLICY": call_policy(spec.training),
        })
    else:
        env["MODEL_REFRESH_SECONDS"] = str(config.model_refresh_seconds)
    return env


def call_policy(training: TrainingSpec) -> str:
    """What the train function lets its callers do (functions/train/call_policy.py reads it): only callers that
    present the credential whose SHA-256 is in the mounted secret file `credential`, changing only what
    allowOverrides names. On a schedule, the cron-connector (which sends no credential) may start a run of the
    configured training, once a minute at most."""
    return json.dumps({
        "credential": INVOKE_DIGEST_KEY,
        "allowOverrides": sorted(training.allow_overrides),
        "paramBounds": {name: bound.dump() for name, bound in sorted(training.param_bounds.items())},
        "maxDataBytes": training.max_data_bytes,
        "scheduledRuns": training.schedule is not None,
    }, sort_keys=True, separators=(",", ":"))


# Pod annotations Prometheus' kubernetes-pods scrape config reads (faas-netes copies a Function's annotations to
# its pods): the watchdog serves the function's metrics on its own port, beside /_/health.
PROMETHEUS_ANNOTATIONS = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                          "prometheus.io/path": "/_/metrics"}


@dataclass(frozen=True)
class FunctionParts:
    """What an OpenFaaS function is made of, whichever way it is deployed: the Function resource (below) and the
    gateway's FunctionDeployment (function_deployment.py) are two spellings of these same parts."""

    name: str
    image: str
    handler: str
    labels: dict[str, str]
    task_labels: dict[str, str]
    annotations: dict[str, str]
    environment: dict[str, str]
    secrets: list[str]
    resources: dict  # {"requests": {...}, "limits": {...}}, either absent when empty


def function_parts(spec: MLFunctionSpec, names: FunctionNames, config: OperatorConfig, store_url: str) -> FunctionParts:
    annotations = {"com.openfaas.serviceaccount": names.service_account, **PROMETHEUS_ANNOTATIONS}
    if spec.task == "train" and spec.training and spec.training.schedule:
        # The OpenFaaS cron-connector invokes functions annotated this way.
        annotations.update({"topic": "cron-function", "schedule": spec.training.schedule})
    image = spec.image or (config.train_image if spec.task == "train" else config.predict_image)
    handler = config.train_handler if spec.task == "train" else config.predict_handler
    task_labels = {LABEL_TASK: spec.task, LABEL_MODEL: spec.model.name}
    return FunctionParts(
        name=names.function, image=image, handler=handler, labels={**scaling_labels(spec), **task_labels},
        task_labels=task_labels, annotations=annotations, environment=environment(spec, config, store_url),
        secrets=[names.credential_secret], resources=effective_resources(spec, config))


def build_function(owner: Owner, spec: MLFunctionSpec, names: FunctionNames, config: OperatorConfig,
                   store_url: str) -> dict:
    parts = function_parts(spec, names, config, store_url)
    return {
        "apiVersion": "openfaas.com/v1",
        "kind": "Function",
        "metadata": metadata(owner, parts.name, config.function_namespace, labels=parts.task_labels),
        "spec": {
            "name": parts.name,
            "image": parts.image,
            "handler": parts.handler,
            "labels": parts.labels,
            "annotations": parts.annotations,
            "environment": parts.environment,
            "secrets": parts.secrets,
            "readOnlyRootFilesystem": True,
            **parts.resources,
        },
    }
