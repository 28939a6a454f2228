"""faas-netes's translation of an OpenFaaS Function (openfaas.com/v1) into the Deployment and Service that run it.
Pure: a Function as the API server returns it, and the Secrets it names, in; manifests out.

Where each part comes from (openfaas/faas-netes; see README.md for the full list):
- Deployment and Service bodies: the provider's handlers/deploy.go (makeDeploymentSpec, makeServiceSpec,
  buildEnvVars, buildAnnotations, createSelector, createResources) — what every OpenFaaS installation runs.
- What only a controller of Function resources adds: pkg/controller (newDeployment, newService, getReplicas):
  the Function's namespace, a controller owner reference, the com.openfaas.function.spec annotation, and replicas
  that leave an autoscaler's choice (or a scale to zero) alone.
- Probes: pkg/k8s/probes.go (MakeProbes), timings from the chart's defaults (chart/openfaas/values.yaml).
- Read-only root: pkg/k8s/securityContext.go (ConfigureReadOnlyRootFilesystem, ConfigureContainerUserID).
- Secrets: pkg/k8s/secrets.go (ConfigureSecrets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from local_openfaas.runtime.scaling import parse_duration
from local_openfaas.runtime.spec import (
    GROUP,
    KIND,
    VERSION,
    FunctionSpec,
    InvalidFunction,
    from_custom_object,
)

FUNCTION_LABEL = "faas_function"
HTTP_PORT = 8080                                      # faas-netes' RuntimeHTTPPort: the watchdog's port
SECRETS_MOUNT_PATH = "/var/openfaas/secrets"
HEALTH_PATH = "/_/health"
LOCK_FILE = "/tmp/.lock"                              # the classic watchdog's health file (exec probes)
PROBE_PATH_ANNOTATION = "com.openfaas.health.http.path"
PROBE_DELAY_ANNOTATION = "com.openfaas.health.http.initialDelay"
SERVICE_ACCOUNT_ANNOTATION = "com.openfaas.serviceaccount"
SPEC_ANNOTATION = "com.openfaas.function.spec"
SCRAPE_ANNOTATION = "prometheus.io.scrape"
MIN_REPLICAS_LABEL = "com.openfaas.scale.min"
NON_ROOT_UID = 12000                                  # faas-netes' SecurityContextUserID (set_nonroot_user)
TEMP_VOLUME = "temp"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_PULL_SECRET_TYPES = frozenset({"kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"})


class MissingSecret(InvalidFunction):
    """A Secret the Function names does not exist in its namespace (faas-netes refuses to deploy it)."""


@dataclass(frozen=True)
class ProbeTiming:
    """One probe's timing. The defaults are the OpenFaaS chart's (faasnetes.readinessProbe / livenessProbe)."""

    initial_delay_seconds: int = 2
    timeout_seconds: int = 1
    period_seconds: int = 2


@dataclass(frozen=True)
class DeploymentConfig:
    """faas-netes' DeploymentConfig: settings of the provider, not of a function.

    image_pull_policy: faas-netes' own default is Always (env image_pull_policy); here IfNotPresent, because the
    node runs images imported into containerd that no registry serves. http_probe: the chart's faasnetes.httpProbe
    (true); false gives exec probes on /tmp/.lock, as faas-netes does without it.
    """

    image_pull_policy: str = "IfNotPresent"
    http_probe: bool = True
    readiness: ProbeTiming = field(default_factory=ProbeTiming)
    liveness: ProbeTiming = field(default_factory=ProbeTiming)
    set_non_root_user: bool = False

    def __post_init__(self) -> None:
        if self.image_pull_policy not in PULL_POLICIES:
            raise ValueError(f"invalid image pull policy {self.image_pull_policy!r}: expected one of {PULL_POLICIES}")


def owner_reference(function: dict) -> dict:
    """metav1.NewControllerRef(function): deleting the Function garbage-collects what it owns."""
    meta = function["metadata"]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def deployment(function: dict, secrets: Mapping[str, dict], config: DeploymentConfig = DeploymentConfig(),
               current_replicas: int | None = None) -> dict:
    """The Deployment faas-netes keeps for `function`.

    `secrets` maps each Secret the Function names to the Secret as the API server returns it (only its type and
    data keys are read); `current_replicas` is the live Deployment's spec.replicas, None if there is none yet.
    Raises InvalidFunction (MissingSecret for an absent Secret) when faas-netes would refuse the Function.
    """
    spec = from_custom_object(function)
    raw = function.get("spec") or {}
    name = spec.name
    annotations = _annotations(spec)
    annotations[SPEC_ANNOTATION] = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    liveness, readiness = probes(spec.annotations, config)

    container: dict = {
        "name": name,
        "image": spec.image,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "resources": _resources(spec),
        "imagePullPolicy": config.image_pull_policy,
        "livenessProbe": liveness,
        "readinessProbe": readiness,
        "securityContext": {"readOnlyRootFilesystem": spec.read_only_root_filesystem},
    }
    env = _environment(raw.get("handler") or "", spec.environment)
    if env:
        container["env"] = env
    if config.set_non_root_user:
        container["securityContext"]["runAsUser"] = NON_ROOT_UID

    pod: dict = {"containers": [container], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                 "enableServiceLinks": False}  # service links would inject env for every Service in the namespace
    node_selector = _node_selector(spec.constraints)
    if node_selector:
        pod["nodeSelector"] = node_selector
    if spec.annotations.get(SERVICE_ACCOUNT_ANNOTATION):
        pod["serviceAccountName"] = spec.annotations[SERVICE_ACCOUNT_ANNOTATION]
    volumes, mounts = [], []
    if spec.read_only_root_filesystem:  # a writable /tmp is all a function may write to
        volumes.append({"name": TEMP_VOLUME, "emptyDir": {}})
        mounts.append({"name": TEMP_VOLUME, "mountPath": "/tmp"})
    projections, pull_secrets = _secret_sources(spec, secrets)
    if projections:
        volume = f"{name}-projected-secrets"
        volumes.append({"name": volume, "projected": {"sources": projections}})
        mounts.append({"name": volume, "readOnly": True, "mountPath": SECRETS_MOUNT_PATH})
    if volumes:
        pod["volumes"] = volumes
        container["volumeMounts"] = mounts
    if pull_secrets:
        pod["imagePullSecrets"] = pull_secrets

    # faas-netes copies the Function's labels over faas_function, so a Function that sets faas_function itself
    # gets a template its selector does not match, which the API server rejects.
    labels = {FUNCTION_LABEL: name, **spec.labels}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": {FUNCTION_LABEL: name},
                     "annotations": annotations, "ownerReferences": [owner_reference(function)]},
        "spec": {
            "replicas": replicas(spec.labels, current_replicas),
            "selector": {"matchLabels": {FUNCTION_LABEL: name}},
            # a new replica is ready before an old one goes: a rollout never drops capacity
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 10,
            "template": {"metadata": {"name": name, "labels": labels, "annotations": dict(annotations)},
                         "spec": pod},
        },
    }


def service(function: dict) -> dict:
    """The ClusterIP Service in front of the function's pods: <name>.<namespace>:8080, as the gateway calls it."""
    spec = from_custom_object(function)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "annotations": _annotations(spec),
                     "ownerReferences": [owner_reference(function)]},
        "spec": {
            "type": "ClusterIP",
            "selector": {FUNCTION_LABEL: spec.name},
            "ports": [{"name": "http", "protocol": "TCP", "port": HTTP_PORT, "targetPort": HTTP_PORT}],
        },
    }


def replicas(labels: Mapping[str, str], current: int | None) -> int:
    """faas-netes' getReplicas: com.openfaas.scale.min (when a positive integer) for a new Deployment, else 1; an
    existing Deployment keeps its count (an autoscaler's or a scale to zero) unless it is below that minimum."""
    minimum = _min_replicas(labels)
    if current is None:
        return minimum or 1
    if current == 0 or minimum is None:
        return current
    return max(current, minimum)


def probes(annotations: Mapping[str, str], config: DeploymentConfig) -> tuple[dict, dict]:
    """(liveness, readiness): HTTP GET /_/health on 8080, or `cat /tmp/.lock` when HTTP probes are off.

    As in MakeProbes: the annotation com.openfaas.health.http.path moves the path (and forces HTTP), and
    com.openfaas.health.http.initialDelay (a Go duration) sets both probes' initial delay, which otherwise is the
    liveness probe's.
    """
    path = annotations.get(PROBE_PATH_ANNOTATION, HEALTH_PATH)
    delay = config.liveness.initial_delay_seconds
    if PROBE_DELAY_ANNOTATION in annotations:
        try:
            delay = int(parse_duration(annotations[PROBE_DELAY_ANNOTATION]))
        except ValueError as error:
            raise InvalidFunction(f"invalid {PROBE_DELAY_ANNOTATION} duration format: {error}") from None
    http = config.http_probe or path != HEALTH_PATH

    def probe(timing: ProbeTiming) -> dict:
        handler = {"httpGet": {"path": path, "port": HTTP_PORT}} if http else {"exec": {"command": ["cat", LOCK_FILE]}}
        return {**handler, "initialDelaySeconds": delay, "timeoutSeconds": timing.timeout_seconds,
                "periodSeconds": timing.period_seconds, "successThreshold": 1, "failureThreshold": 3}

    return probe(config.liveness), probe(config.readiness)


def _annotations(spec: FunctionSpec) -> dict[str, str]:
    """buildAnnotations: the Function's annotations; prometheus.io.scrape "false" unless it says otherwise (the
    watchdog serves no metrics endpoint)."""
    return {SCRAPE_ANNOTATION: "false", **spec.annotations}


def _environment(handler: str, environment: Mapping[str, str]) -> list[dict]:
    """buildEnvVars: fprocess (the watchdog's command) from spec.handler, then spec.environment, sorted by name."""
    variables = dict(environment)
    if handler:
        variables["fprocess"] = handler
    return [{"name": key, "value": variables[key]} for key in sorted(variables)]


def _resources(spec: FunctionSpec) -> dict:
    resources = {}
    for key, values in (("limits", spec.limits), ("requests", spec.requests)):
        chosen = {resource: values[resource] for resource in ("cpu", "memory") if values.get(resource)}
        if chosen:
            resources[key] = chosen
    return resources


def _node_selector(constraints: tuple[str, ...]) -> dict[str, str]:
    """createSelector: each constraint "key=value" becomes a nodeSelector entry; others are ignored."""
    selector = {}
    for constraint in constraints:
        parts = constraint.split("=")
        if len(parts) == 2:
            selector[parts[0]] = parts[1]
    return selector


def _secret_sources(spec: FunctionSpec, secrets: Mapping[str, dict]) -> tuple[list[dict], list[dict]]:
    """ConfigureSecrets: registry credentials become imagePullSecrets; every other Secret is projected, one file
    per data key, into the one volume at /var/openfaas/secrets (keys sorted: Go's map order is random)."""
    projections, pull_secrets = [], []
    for name in spec.secrets:
        secret = secrets.get(name)
        if secret is None:
            raise MissingSecret(f"required secret '{name}' was not found in the cluster")
        if secret.get("type") in _PULL_SECRET_TYPES:
            pull_secrets.append({"name": name})
            continue
        projection: dict = {"name": name}
        keys = sorted((secret.get("data") or {}).keys())
        if keys:
            projection["items"] = [{"key": key, "path": key} for key in keys]
        projections.append({"secret": projection})
    return projections, pull_secrets


def _min_replicas(labels: Mapping[str, str]) -> int | None:
    """The label when it is what Go's strconv.Atoi reads as a positive integer; otherwise no minimum."""
    text = labels.get(MIN_REPLICAS_LABEL, "")
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if value > 0 else None
