"""The pod pool's objects and requests (pure): per image, a Deployment of pool replicas (the function image in
pool mode, functions/template/.../function_pool.py), the Secret holding the pool's token, the label patch that
claims a pool pod for one function, and the body that specializes it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from local_openfaas.faas_netes import objects
from local_openfaas.faas_netes.objects import HTTP_PORT, DeploymentConfig

POOL_LABEL = "pool.local-openfaas/image"          # on unclaimed pool pods: the pool Deployment's selector
MEMBER_LABEL = "pool.local-openfaas/member"       # on every pod a pool made, claimed or not (the pool's watch)
CLAIMED_LABEL = "pool.local-openfaas/function"    # the one function a claimed pod serves (never changes)
TOKEN_SECRET = "local-openfaas-pool-token"
TOKEN_KEY = "token"
TOKEN_DIR = "/var/run/local-openfaas-pool"
TOKEN_DIGEST_ANNOTATION = "pool.local-openfaas/token-sha256"  # a new token rolls the pool's pods
HEALTH_PATH = "/_/pool/health"
SPECIALIZE_PATH = "/_/specialize"


def pool_key(image: str) -> str:
    return hashlib.sha256(image.encode()).hexdigest()[:12]


def pool_name(image: str) -> str:
    return f"pool-{pool_key(image)}"


def pool_pods_key(image: str) -> str:
    """How the pool's watch files unclaimed pods of `image` ("pool/..." is never a function's name)."""
    return f"pool/{pool_key(image)}"


def watch_key(labels: Mapping[str, str]) -> str | None:
    """A pool pod's key in the pool's watch: the function it serves, or its pool while unclaimed."""
    if labels.get(CLAIMED_LABEL):
        return labels[CLAIMED_LABEL]
    if labels.get(MEMBER_LABEL):
        return f"pool/{labels[MEMBER_LABEL]}"
    return None


def token_secret(namespace: str, token: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": TOKEN_SECRET, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "local-openfaas"}},
            "stringData": {TOKEN_KEY: token}}


def pool_deployment(namespace: str, image: str, size: int, token: str, config: DeploymentConfig) -> dict:
    """`size` pool replicas of `image`: non-root, read-only root with /tmp, no API token, ready once waiting."""
    key = pool_key(image)
    labels = {POOL_LABEL: key, MEMBER_LABEL: key}
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    container = {
        "name": "pool",
        "image": image,
        "imagePullPolicy": config.image_pull_policy,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": [{"name": "MLFUNCTIONS_POOL_TOKEN_FILE", "value": f"{TOKEN_DIR}/{TOKEN_KEY}"}],
        "readinessProbe": {"httpGet": {"path": HEALTH_PATH, "port": HTTP_PORT}, "periodSeconds": 1,
                           "timeoutSeconds": 1},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         {"name": "pool-token", "mountPath": TOKEN_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": pool_name(image), "namespace": namespace, "labels": {MEMBER_LABEL: key}},
        "spec": {
            "replicas": size,
            "selector": {"matchLabels": {POOL_LABEL: key}},
            "template": {
                "metadata": {"labels": labels, "annotations": {TOKEN_DIGEST_ANNOTATION: digest}},
                "spec": {"containers": [container], "enableServiceLinks": False,
                         "automountServiceAccountToken": False,
                         "volumes": [{"name": "tmp", "emptyDir": {}},
                                     {"name": "pool-token", "secret": {"secretName": TOKEN_SECRET}}]},
            },
        },
    }


def claim_patch(function: str) -> dict:
    """Out of the pool (its ReplicaSet lets go and starts a replacement), into one function, for good."""
    return {"metadata": {"labels": {POOL_LABEL: None, CLAIMED_LABEL: function}}}


def specialization(function: dict, secrets: Mapping[str, dict]) -> dict:
    """What the function's own pod would get: its container's variables, and each key of each Secret it names
    as a file (the Secret's data is already base64)."""
    manifest = objects.deployment(function, secrets)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container.get("env", ())}
    files = {key: value for secret in secrets.values() for key, value in (secret.get("data") or {}).items()}
    return {"env": env, "secrets": files}
