"""The few API calls the reconciler makes, on plain dicts, with the synchronous kubernetes client (callers run it in
threads of their own). Objects live in one namespace: the one the reconciler serves."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from local_openfaas.faas_netes.objects import FUNCTION_LABEL
from local_openfaas.runtime.spec import GROUP, PLURAL, VERSION

FIELD_MANAGER = "mlfunctions-faas-netes"
_APPLY = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": "application/apply-patch+yaml"}


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    """A client from `kubeconfig`, or from the pod's ServiceAccount when there is none (running in a cluster)."""
    if kubeconfig is not None:
        return config.new_client_from_config(config_file=str(kubeconfig))
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def _raw(response) -> dict:
    return json.loads(response.data)


def _or_none(call: Callable[[], dict]) -> dict | None:
    try:
        return call()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class NamespaceClient:
    def __init__(self, api: client.ApiClient, namespace: str):
        self.namespace = namespace
        self._objects = client.CustomObjectsApi(api)
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._open: set = set()
        self._lock = threading.Lock()

    # -- reads --

    def function(self, name: str) -> dict | None:
        return _or_none(lambda: self._objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                                           name))

    def deployment(self, name: str) -> dict | None:
        return _or_none(lambda: _raw(self._apps.read_namespaced_deployment(name, self.namespace,
                                                                           _preload_content=False)))

    def service(self, name: str) -> dict | None:
        return _or_none(lambda: _raw(self._core.read_namespaced_service(name, self.namespace,
                                                                        _preload_content=False)))

    def secret(self, name: str) -> dict | None:
        return _or_none(lambda: _raw(self._core.read_namespaced_secret(name, self.namespace,
                                                                       _preload_content=False)))

    # -- writes --

    def apply(self, manifest: dict) -> dict:
        """Server-side apply as FIELD_MANAGER: fields we stop sending are removed; others' fields stay."""
        name = manifest["metadata"]["name"]
        if manifest["kind"] == "Deployment":
            response = self._apps.patch_namespaced_deployment(name, self.namespace, manifest, **_APPLY,
                                                              _preload_content=False)
        else:
            response = self._core.patch_namespaced_service(name, self.namespace, manifest, **_APPLY,
                                                           _preload_content=False)
        return _raw(response)

    def write_status(self, name: str, status: dict) -> None:
        """Replace the Function's status (a merge patch replaces the conditions list as a whole)."""
        try:
            self._objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, name, {"status": status},
                _content_type="application/merge-patch+json")
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to report on
                raise

    def scale(self, name: str, replicas: int) -> None:
        """Set the Deployment's replicas through its scale subresource, as an autoscaler (or HPA) does."""
        self._apps.patch_namespaced_deployment_scale(name, self.namespace, {"spec": {"replicas": replicas}})

    # -- list + watch --

    def list_functions(self) -> dict:
        return self._objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)

    def list_deployments(self) -> dict:
        """The Deployments faas-netes made (they all carry the faas_function label)."""
        return _raw(self._apps.list_namespaced_deployment(self.namespace, label_selector=FUNCTION_LABEL,
                                                          _preload_content=False))

    def watch_functions(self, resource_version: str, seconds: int) -> Iterator[tuple[str, dict]]:
        return self._watch(lambda **kw: self._objects.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, **kw), resource_version, seconds)

    def watch_deployments(self, resource_version: str, seconds: int) -> Iterator[tuple[str, dict]]:
        return self._watch(lambda **kw: self._apps.list_namespaced_deployment(
            self.namespace, label_selector=FUNCTION_LABEL, **kw), resource_version, seconds)

    def _watch(self, call, resource_version: str, seconds: int) -> Iterator[tuple[str, dict]]:
        """(type, object) for each event, BOOKMARKs included, until the server ends the watch after `seconds` or
        close() cuts it short. Raises Expired when `resource_version` is too old."""
        response = call(watch=True, resource_version=resource_version, timeout_seconds=seconds,
                        allow_watch_bookmarks=True, _preload_content=False)
        with self._lock:
            self._open.add(response)
        try:
            for line in response:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    status = event["object"]
                    if status.get("code") == 410:
                        raise Expired()
                    raise ApiException(status=status.get("code"), reason=status.get("message"))
                yield event["type"], event["object"]
        finally:
            with self._lock:
                self._open.discard(response)
            response.release_conn()

    def close(self) -> None:
        """Cut open watches short, so their threads see a stop at once rather than when the server ends them."""
        with self._lock:
            responses = list(self._open)
        for response in responses:
            try:
                response.shutdown()  # urllib3 >= 2.3: wakes a read blocked in another thread
            except (AttributeError, OSError):
                response.close()
