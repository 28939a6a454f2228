"""The control plane itself: a real API server with CRDs, watches, RBAC and garbage collection."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from mlfunctions_harness.controlplane import use_existing_cluster

WIDGETS = dict(group="test.mlfunctions.dev", version="v1", plural="widgets")


def eventually(check, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def test_reports_its_real_version(control_plane):
    version = control_plane.version
    assert version.startswith("v1.") and version != "v0.0.0-master"
    if not use_existing_cluster():
        assert int(version.split(".")[1]) >= 33


def test_custom_objects_are_validated_watched_and_patched(k8s, namespace, install_crds):
    install_crds("tests/controlplane/widgets.crd.yaml")
    objects = client.CustomObjectsApi(k8s)
    seen: list[tuple[str, int]] = []
    watcher = watch.Watch()

    def follow():
        for event in watcher.stream(objects.list_namespaced_custom_object, namespace=namespace,
                                    timeout_seconds=30, **WIDGETS):
            seen.append((event["type"], event["object"]["spec"]["size"]))
            if len(seen) == 2:
                watcher.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.5)  # let the watch open before the object exists, so the ADDED event is a live one

    widget = {"apiVersion": "test.mlfunctions.dev/v1", "kind": "Widget",
              "metadata": {"name": "w1"}, "spec": {"size": 3}}
    objects.create_namespaced_custom_object(namespace=namespace, body=widget, **WIDGETS)
    objects.patch_namespaced_custom_object(namespace=namespace, name="w1", body={"spec": {"size": 4}}, **WIDGETS)
    follower.join(35)

    assert seen == [("ADDED", 3), ("MODIFIED", 4)]

    # The schema is enforced by the server, naming the field.
    with pytest.raises(ApiException) as rejected:
        objects.create_namespaced_custom_object(
            namespace=namespace, body={**widget, "metadata": {"name": "w2"}, "spec": {"size": 99}}, **WIDGETS)
    assert rejected.value.status == 422
    assert "spec.size" in rejected.value.body

    # The status subresource ignores spec changes and vice versa.
    objects.patch_namespaced_custom_object_status(namespace=namespace, name="w1",
                                                  body={"status": {"seen": 7}, "spec": {"size": 9}}, **WIDGETS)
    stored = objects.get_namespaced_custom_object(namespace=namespace, name="w1", **WIDGETS)
    assert stored["status"] == {"seen": 7} and stored["spec"] == {"size": 4}


def test_service_account_gets_exactly_what_rbac_grants(control_plane, k8s, namespace):
    core, rbac = client.CoreV1Api(k8s), client.RbacAuthorizationV1Api(k8s)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "reader")

    with config.new_client_from_config(config_file=str(kubeconfig)) as as_reader:
        reader = client.CoreV1Api(as_reader)
        with pytest.raises(ApiException) as denied:
            reader.read_namespaced_config_map("settings", namespace)
        assert denied.value.status == 403
        assert f"system:serviceaccount:{namespace}:reader" in denied.value.body

        rbac.create_namespaced_role(namespace, {
            "metadata": {"name": "read-settings"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                       "resourceNames": ["settings"]}],
        })
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": "reader-reads-settings"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-settings"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        })
        assert eventually(lambda: _allowed(reader, "settings", namespace)).data == {"a": "1"}
        # resourceNames scope the grant: other objects stay out of reach.
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
        with pytest.raises(ApiException) as still_denied:
            reader.read_namespaced_config_map("other", namespace)
        assert still_denied.value.status == 403


def _allowed(api: client.CoreV1Api, name: str, namespace: str):
    try:
        return api.read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status == 403:
            return None
        raise


def test_garbage_collector_deletes_children_of_a_deleted_owner(k8s, namespace):
    core = client.CoreV1Api(k8s)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "child", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]},
        "stringData": {"k": "v"},
    })
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        try:
            core.read_namespaced_secret("child", namespace)
            return False
        except ApiException as error:
            return error.status == 404

    eventually(child_gone, timeout=60)


def test_new_namespaces_get_a_default_service_account(k8s, namespace):
    core = client.CoreV1Api(k8s)
    eventually(lambda: any(sa.metadata.name == "default"
                           for sa in core.list_namespaced_service_account(namespace).items))
