"""Ending a test's MLFunctions while the operator that took them still runs.

An MLFunction carries its operator's finalizer. Left behind when that operator stops, it lingers in a terminating
namespace, and the next suite's operator (they all watch every namespace) adopts it: it then claims the model in
its own store for a namespace that is not its test's. So a fixture deletes its MLFunctions, and waits until the
finalizers have run, before it stops the operator."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from .processes import wait_for

GROUP, VERSION, PLURAL = "mlfunctions.dev", "v1alpha1", "mlfunctions"


def delete_mlfunctions(api: client.ApiClient, namespace: str, timeout: float = 60.0) -> None:
    """Delete every MLFunction in `namespace`; return once none is left."""
    objects = client.CustomObjectsApi(api)

    def remaining() -> list[str]:
        return [item["metadata"]["name"] for item in
                objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]]

    for name in remaining():
        try:
            objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise
    wait_for(lambda: not remaining(), timeout=timeout, what=f"the MLFunctions in {namespace} to be deleted")
