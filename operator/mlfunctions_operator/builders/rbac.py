"""The function's own identity: a ServiceAccount that may read its credential Secret and nothing else."""

from __future__ import annotations

from ..naming import FunctionNames, Owner
from .common import metadata


def build_service_account(owner: Owner, names: FunctionNames, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": metadata(owner, names.service_account, namespace)}


def build_role(owner: Owner, names: FunctionNames, namespace: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(owner, names.role, namespace),
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [names.credential_secret],
                   "verbs": ["get"]}],
    }


def build_role_binding(owner: Owner, names: FunctionNames, namespace: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(owner, names.role_binding, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.role},
        "subjects": [{"kind": "ServiceAccount", "name": names.service_account, "namespace": namespace}],
    }
