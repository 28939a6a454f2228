"""What a ModelStore of our own is made of: iris-server as a Deployment with a volume, a Service, an admin Secret."""

from __future__ import annotations

import base64

from ..api import ModelStoreSpec
from ..naming import Owner, StoreNames
from .common import metadata

ADMIN_TOKEN_KEY = "admin-token"
PORT = 8080
DATA_DIR = "/var/lib/iris"
ADMIN_TOKEN_DIR = "/var/run/secrets/iris"


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


def build_deployment(owner: Owner, names: StoreNames, spec: ModelStoreSpec, default_image: str) -> dict:
    resources = spec.resources.dump() if spec.resources else {}
    container = {
        "name": "iris-server",
        "image": spec.image or default_image,
        "env": [
            {"name": "IRIS_DATA_DIR", "value": DATA_DIR},
            {"name": "IRIS_ADMIN_TOKEN_FILE", "value": f"{ADMIN_TOKEN_DIR}/{ADMIN_TOKEN_KEY}"},
            {"name": "IRIS_HOST", "value": "0.0.0.0"},
            {"name": "IRIS_PORT", "value": str(PORT)},
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 6},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR},
                         {"name": "admin-token", "mountPath": ADMIN_TOKEN_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        **({"resources": {k: {r: str(v) for r, v in amounts.items()} for k, amounts in resources.items()}}
           if resources else {}),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, names.deployment, owner.namespace, labels=_selector(owner)),
        "spec": {
            "replicas": spec.replicas,
            # One writer on a ReadWriteOnce volume: never run the old and the new pod side by side.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _selector(owner)},
            "template": {
                "metadata": {"labels": _selector(owner)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 65532, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": names.claim}},
                        {"name": "admin-token", "secret": {"secretName": names.admin_secret}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
