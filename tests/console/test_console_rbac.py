"""The console's rights, as the API server enforces them on its own ServiceAccount (the chart's console RBAC):
it reads MLFunctions, ModelStores and Functions, never writes, reads no Secret but the train credentials it
was given by name; and a train trigger it was not given fails with that said, training nothing."""

from __future__ import annotations

import pytest
import requests
from .console_support import csrf_of
from iris_client import ModelStoreClient
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"


@pytest.fixture
def as_console(console_stack):
    with config.new_client_from_config(config_file=str(console_stack.kubeconfig)) as api:
        yield api


def _status(call) -> int:
    try:
        call()
    except ApiException as error:
        return error.status
    return 200


def test_the_console_reads_and_never_writes(console_stack, as_console):
    objects, core = client.CustomObjectsApi(as_console), client.CoreV1Api(as_console)
    ns, op_ns, fn_ns = (
        console_stack.namespace,
        console_stack.operator_namespace,
        console_stack.function_namespace,
    )
    listed = objects.list_cluster_custom_object(GROUP, VERSION, "mlfunctions")["items"]
    assert {m["metadata"]["name"] for m in listed if m["metadata"]["namespace"] == ns} >= set(
        console_stack.mlfunctions
    )
    assert objects.list_namespaced_custom_object(GROUP, VERSION, op_ns, "modelstores")["items"]
    assert objects.list_namespaced_custom_object("openfaas.com", "v1", fn_ns, "functions")["items"]

    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MLFunction",
        "metadata": {"name": "by-console"},
        "spec": {"task": "predict", "model": {"name": "iris"}},
    }
    refused = {
        "create an MLFunction": lambda: objects.create_namespaced_custom_object(
            GROUP, VERSION, ns, "mlfunctions", body
        ),
        "patch an MLFunction": lambda: objects.patch_namespaced_custom_object(
            GROUP, VERSION, ns, "mlfunctions", "iris-predict", {"spec": {"scaling": {"maxReplicas": 3}}}
        ),
        "delete a Function": lambda: objects.delete_namespaced_custom_object(
            "openfaas.com",
            "v1",
            fn_ns,
            "functions",
            console_stack.mlfunctions["iris-predict"]["status"]["function"]["name"],
        ),
        "list ModelStores elsewhere": lambda: objects.list_cluster_custom_object(
            GROUP, VERSION, "modelstores"
        ),
        "list Secrets": lambda: core.list_namespaced_secret(ns),
        "list Secrets of the functions": lambda: core.list_namespaced_secret(fn_ns),
        "read another train function's credential": lambda: core.read_namespaced_secret(
            "iris-train-other-invoke", ns
        ),
        "read the store's admin Secret": lambda: core.read_namespaced_secret("model-store-admin", op_ns),
        "list Pods": lambda: core.list_namespaced_pod(ns),
    }
    statuses = {what: _status(call) for what, call in refused.items()}
    assert statuses == {what: 403 for what in refused}, statuses
    # What it was given: the credentials of the train functions it may trigger, by name (200, or 404 while an
    # operator without invoke credentials runs: either way, authorized).
    assert _status(lambda: core.read_namespaced_secret("iris-train-invoke", ns)) in (200, 404)


def _train(console_stack, name: str, session=None, **form) -> dict:
    session = session or console_stack.session()
    page = session.get(f"{console_stack.url}/functions/{console_stack.namespace}/{name}", timeout=60)
    assert page.status_code == 200, page.text
    started = session.post(
        f"{console_stack.url}/functions/{console_stack.namespace}/{name}/train",
        data={"csrf": csrf_of(page.text), **form},
        timeout=30,
    )
    assert started.status_code == 200 and "/jobs/" in started.url, started.text
    return wait_for(
        lambda: (
            (j := session.get(started.url + "/status", timeout=10).json())["phase"] in ("done", "failed")
            and j
        ),
        timeout=180,
        what=f"the training of {name} to end",
    )


def test_a_train_trigger_the_console_was_not_given_trains_nothing(console_stack):
    store = ModelStoreClient(console_stack.store_url, console_stack.admin_token)
    before = len(store.list_versions("iris"))
    job = _train(console_stack, "iris-train-other")
    assert job["phase"] == "failed"
    assert job["problem"]["title"] == (
        f"The console may not read the train credential of {console_stack.namespace}/iris-train-other"
    )
    assert "console.trainTriggers" in " ".join(job["problem"]["todo"])
    assert len(store.list_versions("iris")) == before


def test_the_train_function_wants_the_credential_the_console_sends(console_stack):
    function = console_stack.mlfunctions["iris-train"]["status"]["function"]
    url = f"{console_stack.gateway_url()}/function/{function['name']}.{function['namespace']}"
    for headers in ({}, {"Authorization": "Bearer not-the-token-not-the-token-not-the-token"}):
        refused = requests.post(url, json={}, headers=headers, timeout=60)
        assert refused.status_code == 401, refused.text
    # ...while the console's calls (above and below) are answered: it sent the function's invoke credential.


def test_a_train_trigger_it_was_given_trains_a_new_version(console_stack):
    store = ModelStoreClient(console_stack.store_url, console_stack.admin_token)
    newest = max(v.version for v in store.list_versions("iris"))
    job = _train(
        console_stack,
        "iris-train",
        **{"estimator": "RandomForestClassifier", "param.n_estimators": "20", "param.criterion": "entropy"},
    )
    assert job["phase"] == "done", job
    assert job["result"]["model"] == {"name": "iris", "version": newest + 1}
    assert (
        job["result"]["estimator"] == "RandomForestClassifier" and job["result"]["metrics"]["accuracy"] > 0.8
    )
    stored = store.get_version("iris", newest + 1)
    assert stored.metadata["estimator"] == "RandomForestClassifier"
    assert stored.metadata["params"] == {"n_estimators": 20, "criterion": "entropy"}
