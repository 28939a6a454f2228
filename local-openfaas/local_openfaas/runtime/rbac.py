"""The runtime's identity on the cluster: what OpenFaaS's controller may do, and no more."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

RULES = [
    {"apiGroups": ["openfaas.com"], "resources": ["functions"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["openfaas.com"], "resources": ["functions/status"], "verbs": ["get", "patch", "update"]},
    # get: a function's secrets; the rest: the /system/secrets API (faas-netes has the same rights)
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "update", "delete"]},
]


def ensure_identity(api: client.ApiClient, namespace: str, name: str = "mlfunctions-local-runtime") -> None:
    """A ServiceAccount `namespace/name` bound to a ClusterRole of the same name with RULES (idempotent)."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    _create_or_replace(
        lambda: core.create_namespaced_service_account(namespace, {"metadata": {"name": name}}), None)
    role = {"metadata": {"name": name}, "rules": RULES}
    _create_or_replace(lambda: rbac.create_cluster_role(role), lambda: rbac.replace_cluster_role(name, role))
    binding = {"metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}
    _create_or_replace(lambda: rbac.create_cluster_role_binding(binding),
                       lambda: rbac.replace_cluster_role_binding(name, binding))


def _create_or_replace(create, replace) -> None:
    try:
        create()
    except ApiException as error:
        if error.status != 409:
            raise
        if replace is not None:
            replace()
