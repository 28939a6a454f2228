"""The reconciler's identity in a namespace: a ServiceAccount bound to the Role in rbac.yaml, nothing more."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

ROLE_FILE = Path(__file__).with_name("rbac.yaml")
SERVICE_ACCOUNT = "mlfunctions-faas-netes"


def role() -> dict:
    """The Role the reconciler runs under (rbac.yaml)."""
    return yaml.safe_load(ROLE_FILE.read_text())


def install(api: client.ApiClient, namespace: str, name: str = SERVICE_ACCOUNT) -> str:
    """ServiceAccount `name` in `namespace`, with the Role of the same name bound to it there (idempotent).
    Returns the ServiceAccount's name, for a token (TokenRequest) to run the reconciler with."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    _create_or_replace(lambda: core.create_namespaced_service_account(namespace, {"metadata": {"name": name}}),
                       None)
    document = {**role(), "metadata": {"name": name, "namespace": namespace}}
    _create_or_replace(lambda: rbac.create_namespaced_role(namespace, document),
                       lambda: rbac.replace_namespaced_role(name, namespace, document))
    binding = {"metadata": {"name": name, "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}
    _create_or_replace(lambda: rbac.create_namespaced_role_binding(namespace, binding),
                       lambda: rbac.replace_namespaced_role_binding(name, namespace, binding))
    return name


def _create_or_replace(create, replace) -> None:
    try:
        create()
    except ApiException as error:
        if error.status != 409:
            raise
        if replace is not None:
            replace()
