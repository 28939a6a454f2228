"""What the console shows when something is wrong, made wrong for real: an MLFunction the operator stalls, a
function whose image cannot run, a model store that is down or refuses the token, a ServiceAccount without
rights, input the form or the function refuses. Each is a page that names the problem and what to do, never a
blank page or a stack trace."""

from __future__ import annotations

import html

import pytest
import requests
from .console_support import csrf_of, sign_in
from kubernetes import client
from mlfunctions_harness.processes import free_port, wait_for

pytestmark = pytest.mark.server
GROUP, VERSION = "mlfunctions.dev", "v1alpha1"


def _text(response: requests.Response) -> str:
    assert "Traceback" not in response.text and "Internal Server Error" not in response.text
    return html.unescape(response.text)


@pytest.fixture
def mlfunction(console_stack, k8s):
    """mlfunction(name, spec) creates an MLFunction in the stack's namespace; deleted at the end."""
    objects = client.CustomObjectsApi(k8s)
    made: list[str] = []

    def create(name: str, spec: dict) -> None:
        objects.create_namespaced_custom_object(
            GROUP,
            VERSION,
            console_stack.namespace,
            "mlfunctions",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MLFunction",
                "metadata": {"name": name},
                "spec": spec,
            },
        )
        made.append(name)

    yield create
    for name in made:
        objects.delete_namespaced_custom_object(GROUP, VERSION, console_stack.namespace, "mlfunctions", name)


def _condition(k8s, namespace: str, name: str, kind: str) -> dict:
    found = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "mlfunctions", name
    )
    return next((c for c in (found.get("status") or {}).get("conditions", []) if c["type"] == kind), {})


def test_a_stalled_function_says_why_and_what_to_do(console_stack, k8s, mlfunction):
    mlfunction(
        "iris-elsewhere", {"task": "predict", "model": {"name": "iris"}, "modelStore": "no-such-store"}
    )
    wait_for(
        lambda: _condition(k8s, console_stack.namespace, "iris-elsewhere", "Stalled").get("status") == "True",
        timeout=60,
        what="the operator to stall the MLFunction",
    )
    session = console_stack.session()
    listing = _text(session.get(f"{console_stack.url}/", timeout=30))
    row = listing[listing.index(f"{console_stack.namespace}/iris-elsewhere") :]
    row = row[: row.index("</tr>")]
    assert "Stalled" in row and "ModelStoreNotFound" in row and "no-such-store" in row
    assert "What to do:" in row and "Create the ModelStore the MLFunction names" in row
    page = _text(
        session.get(f"{console_stack.url}/functions/{console_stack.namespace}/iris-elsewhere", timeout=30)
    )
    assert "Stalled" in page and "Create the ModelStore the MLFunction names" in page


def test_a_function_that_cannot_start(console_stack, k8s, mlfunction):
    mlfunction(
        "iris-unrunnable",
        {"task": "predict", "model": {"name": "iris"}, "image": "example.invalid/no-such-image:1"},
    )
    objects = client.CustomObjectsApi(k8s)

    def function_stalled():
        status = (
            objects.get_namespaced_custom_object(
                GROUP, VERSION, console_stack.namespace, "mlfunctions", "iris-unrunnable"
            ).get("status")
            or {}
        )
        ref = status.get("function")
        if not ref:
            return None
        function = objects.get_namespaced_custom_object(
            "openfaas.com", "v1", ref["namespace"], "functions", ref["name"]
        )
        return any(
            c["type"] == "Stalled" and c["status"] == "True"
            for c in (function.get("status") or {}).get("conditions", [])
        )

    wait_for(function_stalled, timeout=60, what="OpenFaaS to report the Function unable to run")
    session = console_stack.session()
    url = f"{console_stack.url}/functions/{console_stack.namespace}/iris-unrunnable"
    page = _text(session.get(url, timeout=30))
    assert "not running" in page and "Cannot run" in page and "DeploymentFailed" in page
    called = session.post(
        url + "/predict",
        data={"csrf": csrf_of(page), "f0": "5.1", "f1": "3.5", "f2": "1.4", "f3": "0.2"},
        timeout=120,
    )
    answer = _text(called)
    assert called.status_code == 502
    assert "cannot start" in answer and "What to do:" in answer and "logs" in answer


def test_a_store_that_is_down(console_stack, other_console):
    url = other_console(CONSOLE_STORE_URL=f"http://127.0.0.1:{free_port()}")
    session = sign_in(url, console_stack.user, console_stack.password)
    models = session.get(f"{url}/models", timeout=30)
    assert models.status_code == 200
    text = _text(models)
    assert "The model store is down" in text and "did not answer (ConnectError)" in text
    assert "check the ModelStore's Ready condition" in text
    # The functions still show, and a predict form still works without the model's description.
    page = _text(session.get(f"{url}/functions/{console_stack.namespace}/iris-predict", timeout=30))
    assert "Rows to predict, as JSON" in page and "did not answer" in page
    called = session.post(
        f"{url}/functions/{console_stack.namespace}/iris-predict/predict",
        data={"csrf": csrf_of(page), "instances": "[[6.7, 3.0, 5.2, 2.3]]"},
        timeout=60,
    )
    assert called.status_code == 200 and 'id="prediction">virginica<' in called.text


def test_a_token_the_store_refuses(console_stack, other_console):
    url = other_console(STORE_TOKEN="iris_0123456789abcdef_not-a-real-secret")
    text = _text(sign_in(url, console_stack.user, console_stack.password).get(f"{url}/models", timeout=30))
    assert "The model store refused the console's token" in text and "mint a new read token" in text


def test_no_read_token_says_how_to_make_one(console_stack, other_console):
    url = other_console(CONSOLE_STORE_TOKEN_FILE="")
    text = _text(sign_in(url, console_stack.user, console_stack.password).get(f"{url}/models", timeout=30))
    assert "The model store is not configured" in text and 'rights ["read"]' in text


def test_a_service_account_without_rights(console_stack, control_plane, k8s, other_console, tmp_path):
    core = client.CoreV1Api(k8s)
    core.create_namespaced_service_account(
        console_stack.operator_namespace, {"metadata": {"name": "no-rights"}}
    )
    kubeconfig = control_plane.service_account_kubeconfig(
        console_stack.operator_namespace, "no-rights", tmp_path / "no-rights.kubeconfig"
    )
    url = other_console(CONSOLE_KUBECONFIG=str(kubeconfig))
    listing = sign_in(url, console_stack.user, console_stack.password).get(f"{url}/", timeout=30)
    assert listing.status_code == 200
    text = _text(listing)
    assert "The console may not read this from Kubernetes" in text and "console.rbac.create=true" in text
    assert "forbidden" in text


def test_input_is_checked_and_named(console_stack):
    session = console_stack.session()
    base = f"{console_stack.url}/functions/{console_stack.namespace}"
    page = session.get(f"{base}/iris-predict", timeout=30).text
    bad = session.post(
        f"{base}/iris-predict/predict",
        data={"csrf": csrf_of(page), "f0": "five", "f1": "3.5", "f2": "1.4", "f3": "0.2"},
        timeout=30,
    )
    assert bad.status_code == 400 and "sepal length (cm): 'five' is not a number" in _text(bad)
    assert 'value="five"' in bad.text  # what was typed stays, to be corrected
    page = session.get(f"{base}/iris-train", timeout=30).text
    bad = session.post(
        f"{base}/iris-train/train", data={"csrf": csrf_of(page), "estimator": "Ridge"}, timeout=30
    )
    assert bad.status_code == 400 and "'Ridge' is not allowed for dataset iris" in _text(bad)
    bad = session.post(
        f"{base}/iris-train/train", data={"csrf": csrf_of(page), "param.max_iter": "5"}, timeout=30
    )
    assert bad.status_code == 400 and "max_iter: must be between 50 and 2000" in _text(bad)


def test_the_train_function_names_a_parameter_it_refuses(console_stack):
    session = console_stack.session()
    base = f"{console_stack.url}/functions/{console_stack.namespace}/iris-train"
    # n_estimators is within the spec's bounds, but LogisticRegression has no such parameter.
    started = session.post(
        base + "/train",
        data={
            "csrf": csrf_of(session.get(base, timeout=30).text),
            "estimator": "LogisticRegression",
            "param.n_estimators": "10",
        },
        timeout=30,
    )
    job = wait_for(
        lambda: (
            (j := session.get(started.url + "/status", timeout=10).json())["phase"] in ("done", "failed")
            and j
        ),
        timeout=120,
        what="the training to end",
    )
    assert job["phase"] == "failed"
    assert job["problem"]["title"] == "The function refused the input"
    assert "n_estimators" in job["problem"]["detail"]
    assert "The function refused the input" in _text(session.get(started.url, timeout=30))


def test_an_unknown_function_or_job(console_stack):
    session = console_stack.session()
    missing = session.get(f"{console_stack.url}/functions/{console_stack.namespace}/nothing-here", timeout=30)
    assert missing.status_code == 404 and f"No MLFunction {console_stack.namespace}/nothing-here" in _text(
        missing
    )
    job = session.get(f"{console_stack.url}/jobs/no-such-job", timeout=30)
    assert job.status_code == 404 and "No such training job" in _text(job)
