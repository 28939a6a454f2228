"""What a ModelStore of our own is made of: iris-server as a Deployment (with a volume unless both its backends are
shared), a Service, an admin Secret and a PodDisruptionBudget."""

from __future__ import annotations

import base64

from ..api import ModelStoreSpec
from ..naming import Owner, StoreNames
from .common import metadata

ADMIN_TOKEN_KEY = "admin-token"
PORT = 8080
DATA_DIR = "/var/lib/iris"
ADMIN_TOKEN_DIR = "/var/run/secrets/iris"
S3_CREDENTIALS_DIR = "/var/run/secrets/iris-s3"
CATALOG_URL_DIR = "/var/run/secrets/iris-catalog"
# The keys of spec.artifacts.s3.credentialsSecretRef's Secret (the names AWS's tools and KServe use).
S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"


def _selector(owner: Owner) -> dict[str, str]:
    return {"app.kubernetes.io/name": "iris-server", "app.kubernetes.io/instance": owner.name}


def build_admin_secret(owner: Owner, names: StoreNames, admin_token: str) -> dict:
    """Created once and never rewritten: replacing it would lock every issued credential out of revocation."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(owner, names.admin_secret, owner.namespace),
        "data": {ADMIN_TOKEN_KEY: base64.b64encode(admin_token.encode()).decode()},
    }


def build_claim(owner: Owner, names: StoreNames, spec: ModelStoreSpec) -> dict:
    claim_spec: dict = {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": str(spec.storage.size)}}}
    if spec.storage.storage_class_name:
        claim_spec["storageClassName"] = spec.storage.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": metadata(owner, names.claim, owner.namespace), "spec": claim_spec}


def build_service(owner: Owner, names: StoreNames) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, names.service, owner.namespace, labels=_selector(owner)),
        "spec": {"type": "ClusterIP", "selector": _selector(owner),
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def build_disruption_budget(owner: Owner, names: StoreNames) -> dict:
    """At most one store pod evicted at a time: a drain keeps the others serving (and a single replica may go)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, names.disruption_budget, owner.namespace, labels=_selector(owner)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(owner)}},
    }


def _backend_env(spec: ModelStoreSpec) -> list[dict]:
    """iris-server's settings (iris_server/config.py) for the artifact and catalog backends spec chooses."""
    env = []
    if (s3 := spec.s3) is not None:
        env += [{"name": "IRIS_ARTIFACT_BACKEND", "value": "s3"}, {"name": "IRIS_S3_BUCKET", "value": s3.bucket},
                {"name": "IRIS_S3_REGION", "value": s3.region},
                {"name": "IRIS_S3_ADDRESSING_STYLE", "value": s3.addressing}]
        if s3.endpoint:
            env.append({"name": "IRIS_S3_ENDPOINT_URL", "value": s3.endpoint})
        if s3.prefix:
            env.append({"name": "IRIS_S3_PREFIX", "value": s3.prefix})
        if s3.credentials_secret_ref:
            env += [{"name": "IRIS_S3_ACCESS_KEY_ID_FILE", "value": f"{S3_CREDENTIALS_DIR}/{S3_ACCESS_KEY_ID}"},
                    {"name": "IRIS_S3_SECRET_ACCESS_KEY_FILE",
                     "value": f"{S3_CREDENTIALS_DIR}/{S3_SECRET_ACCESS_KEY}"}]
    if (postgres := spec.postgres) is not None:
        env.append({"name": "IRIS_DATABASE_URL_FILE",
                    "value": f"{CATALOG_URL_DIR}/{postgres.url_secret_ref.key}"})
    return env


def _backend_volumes(spec: ModelStoreSpec) -> tuple[list[dict], list[dict]]:
    """(volumes, mounts) for the backends' Secrets, read as files like the admin token."""
    volumes, mounts = [], []
    if spec.s3 is not None and spec.s3.credentials_secret_ref:
        volumes.append({"name": "s3-credentials", "secret": {"secretName": spec.s3.credentials_secret_ref.name}})
        mounts.append({"name": "s3-credentials", "mountPath": S3_CREDENTIALS_DIR, "readOnly": True})
    if spec.postgres is not None:
        volumes.append({"name": "catalog-url", "secret": {"secretName": spec.postgres.url_secret_ref.name}})
        mounts.append({"name": "catalog-url", "mountPath": CATALOG_URL_DIR, "readOnly": True})
    return volumes, mounts


def build_deployment(owner: Owner, names: StoreNames, spec: ModelStoreSpec, default_image: str) -> dict:
    resources = spec.resources.dump() if spec.resources else {}
    backend_volumes, backend_mounts = _backend_volumes(spec)
    container = {
        "name": "iris-server",
        "image": spec.image or default_image,
        "env": [
            {"name": "IRIS_DATA_DIR", "value": DATA_DIR},
            {"name": "IRIS_ADMIN_TOKEN_FILE", "value": f"{ADMIN_TOKEN_DIR}/{ADMIN_TOKEN_KEY}"},
            {"name": "IRIS_HOST", "value": "0.0.0.0"},
            {"name": "IRIS_PORT", "value": str(PORT)},
            *_backend_env(spec),
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 6},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR},
                         {"name": "admin-token", "mountPath": ADMIN_TOKEN_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}, *backend_mounts],
        **({"resources": {k: {r: str(v) for r, v in amounts.items()} for k, amounts in resources.items()}}
           if resources else {}),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, names.deployment, owner.namespace, labels=_selector(owner)),
        "spec": {
            "replicas": spec.replicas,
            # One writer on a ReadWriteOnce volume: never run the old and the new pod side by side. With shared
            # backends, a rolling update that keeps every replica serving until its successor is ready.
            "strategy": {"type": "Recreate"} if spec.needs_volume else {
                "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": _selector(owner)},
            "template": {
                "metadata": {"labels": _selector(owner)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 65532, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        # With shared backends the data directory holds only uploads being received.
                        {"name": "data", "persistentVolumeClaim": {"claimName": names.claim}} if spec.needs_volume
                        else {"name": "data", "emptyDir": {}},
                        {"name": "admin-token", "secret": {"secretName": names.admin_secret}},
                        {"name": "tmp", "emptyDir": {}},
                        *backend_volumes,
                    ],
                },
            },
        },
    }
