"""The function's own identity: a ServiceAccount with no rights at all. Its pod reads its credential Secret from
the volume the kubelet mounts (the kubelet's right, not the pod's), so no Role is needed, and granting one would
cost every new MLFunction the API server's escalation check (a Role and then its RoleBinding, ~100 ms each for an
operator that may not `escalate` or `bind`)."""

from __future__ import annotations

from ..naming import FunctionNames, Owner
from .common import metadata


def build_service_account(owner: Owner, names: FunctionNames, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": metadata(owner, names.service_account, namespace)}
