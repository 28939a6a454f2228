"""Train calls are authenticated: the real train function, configured exactly as the operator configures its
Function (its environment, and its credential Secret as OpenFaaS mounts it under /var/openfaas/secrets), against
the real store. An attacker without the MLFunction's invoke token (none, a forged one, another MLFunction's, an
old one) gets 401; with it, a call may change only what spec.training.allowOverrides says, within paramBounds and
maxDataBytes. Refused calls write nothing; every version written names its MLFunction."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import requests
from local_openfaas import funcenv
from mlfunctions_harness.processes import free_port, wait_healthy
from tenancy_cluster import FUNCTION_NAMESPACE, credential_secret, fn_name, train_spec

pytestmark = pytest.mark.integration

TRAIN_DIR = funcenv.FUNCTIONS_DIR / "train"
CSV = "sepal,petal,target\n" + "".join(f"{i % 7}.{i % 5},{i % 3}.1,{i % 2}\n" for i in range(60))


class TrainFunction:
    """The train function as its pod runs it: the Function's environment, the credential Secret's keys as files."""

    def __init__(self, cluster, namespace: str, name: str, workdir: Path):
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.secrets = workdir / "secrets"
        self.secrets.mkdir(parents=True)
        self.port = free_port()
        self.log = workdir / "train.log"
        self.process: subprocess.Popen | None = None

    def mount(self) -> None:
        """Write the credential Secret's keys as the kubelet does (it updates the files when the Secret changes)."""
        secret = self.cluster.secret(FUNCTION_NAMESPACE, credential_secret(self.namespace, self.name))
        for key, value in secret.data.items():
            (self.secrets / key).write_bytes(base64.b64decode(value))

    def start(self) -> TrainFunction:
        function = self.cluster.function(fn_name(self.namespace, self.name))
        env = {**function["spec"]["environment"], "OPENFAAS_SECRETS_DIR": str(self.secrets)}
        self.mount()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(funcenv.function_command(TRAIN_DIR), stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env=funcenv.function_environment(TRAIN_DIR, self.port, env))
        wait_healthy(f"{self.url}/_/health", self.process, "train", self.log, 60)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, token: str | None = None, *, scheme: str = "Bearer", **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}"
        return requests.post(f"{self.url}/", headers=headers, timeout=120, **kwargs)


@pytest.fixture
def train_function(cluster, tmp_path):
    funcenv.function_python(TRAIN_DIR)  # the function's venv, built once and cached
    started: list[TrainFunction] = []

    def start(namespace: str, name: str) -> TrainFunction:
        function = TrainFunction(cluster, namespace, name, tmp_path / f"{namespace}-{name}")
        started.append(function)
        return function.start()

    yield start
    for function in started:
        function.stop()


def _ready_to_train(cluster, namespace: str, name: str) -> str:
    """Wait for the operator to make the function's children; the invoke token callers present."""
    cluster.wait(lambda: cluster.function(fn_name(namespace, name)) and
                 (s := cluster.secret(FUNCTION_NAMESPACE, credential_secret(namespace, name))) and
                 "invoke-token-sha256" in (s.data or {}), what=f"{namespace}/{name}'s function and credential")
    return cluster.secret_value(namespace, f"{name}-invoke", "token")


def _refused(response: requests.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and all(word in body["error"] for word in words), body


def test_a_call_needs_the_mlfunctions_own_token(cluster, store, tenants, train_function):
    team, eve = tenants("team", "eve")
    model = f"c-{team}"
    cluster.create_mlf(team, "trainer", train_spec(model))
    cluster.create_mlf(eve, "trainer", train_spec(f"c-{eve}"))
    token, other = _ready_to_train(cluster, team, "trainer"), _ready_to_train(cluster, eve, "trainer")
    function = train_function(team, "trainer")

    for attempt in (function.call(), function.call("forged-" + token[7:]), function.call(other),
                    function.call(token, scheme="Basic"), function.call(token + "x")):
        _refused(attempt, 401, "credential")
    assert function.call().headers["WWW-Authenticate"].startswith("Bearer")
    assert store.versions(model) == []  # nothing was trained or written

    trained = function.call(token, json={})
    assert trained.status_code == 200, trained.text
    [written] = store.admin.list_versions(model)
    assert written.version == trained.json()["model"]["version"]
    assert written.written_by["namespace"] == team
    assert written.written_by["metadata"]["mlfunction"] == f"{team}/trainer"

    # a new token (the invoke Secret deleted): the old one stops working once the mount shows the new digest
    old = cluster.secret(FUNCTION_NAMESPACE, credential_secret(team, "trainer")).data["invoke-token-sha256"]
    cluster.core.delete_namespaced_secret("trainer-invoke", team)
    cluster.wait(lambda: cluster.secret(FUNCTION_NAMESPACE, credential_secret(team, "trainer"))
                 .data["invoke-token-sha256"] != old, what="the new digest in the credential Secret")
    new = cluster.secret_value(team, "trainer-invoke", "token")
    function.mount()
    _refused(function.call(token, json={}), 401, "not valid")
    assert function.call(new, json={}).status_code == 200
    assert [v for v, _ in store.versions(model)] == [1, 2]


def test_a_call_changes_only_what_the_spec_allows(cluster, store, tenants, train_function):
    (team,) = tenants("team")
    model = f"o-{team}"
    cluster.create_mlf(team, "tunable", train_spec(
        model, allowOverrides=["params", "data"], paramBounds={"C": {"minimum": 0.01, "maximum": 10}},
        maxDataBytes=4096))
    cluster.create_mlf(team, "fixed", train_spec(f"f-{team}"))
    token = _ready_to_train(cluster, team, "tunable")
    tunable = train_function(team, "tunable")

    _refused(tunable.call(token, json={"dataset": "wine"}), 403, "dataset", "allowOverrides")
    _refused(tunable.call(token, json={"estimator": "SVC"}), 403, "estimator")
    _refused(tunable.call(token, json={"params": {"C": 100}}), 403, "'C'", "[0.01, 10")
    _refused(tunable.call(token, json={"params": {"C": "0.5"}}), 403, "number")
    _refused(tunable.call(token, json={"params": {"max_iter": 100000}}), 403, "'max_iter'", "paramBounds")
    big = CSV + "9.9,9.9,1\n" * 400
    _refused(tunable.call(token, data=big, headers={"Content-Type": "text/csv"}), 413, "4096")
    assert store.versions(model) == []

    assert tunable.call(token, json={"params": {"C": 0.5}}).status_code == 200
    csv = tunable.call(token, data=CSV, headers={"Content-Type": "text/csv"})
    assert csv.status_code == 200 and csv.json()["dataset"].startswith("csv:"), csv.text
    assert [v for v, _ in store.versions(model)] == [1, 2]

    fixed_token = _ready_to_train(cluster, team, "fixed")
    fixed = train_function(team, "fixed")
    _refused(fixed.call(fixed_token, json={"params": {"C": 0.5}}), 403, "params", "allows: nothing")
    _refused(fixed.call(fixed_token, data=CSV, headers={"Content-Type": "text/csv"}), 403, "data")
    assert fixed.call(fixed_token, json={}).status_code == 200


def test_a_scheduled_function_runs_its_own_training_without_a_token_once_a_minute(cluster, store, tenants,
                                                                                  train_function):
    """The cron-connector sends no credential: such a call may run the configured training, nothing else."""
    (team,) = tenants("team")
    model = f"s-{team}"
    cluster.create_mlf(team, "nightly", train_spec(model, schedule="0 3 * * *"))
    token = _ready_to_train(cluster, team, "nightly")
    function = train_function(team, "nightly")
    _refused(function.call(json={"params": {"C": 3}}), 401, "credential")
    _refused(function.call(data=CSV, headers={"Content-Type": "text/csv"}), 401, "credential")
    _refused(function.call("wrong-token"), 401, "not valid")
    assert function.call().status_code == 200
    too_soon = function.call()
    _refused(too_soon, 429, "one a minute")
    assert int(too_soon.headers["Retry-After"]) > 0
    assert function.call(token, json={}).status_code == 200  # the owner is not held to the schedule's pace
    assert [v for v, _ in store.versions(model)] == [1, 2]


@pytest.mark.parametrize("policy", ["{", '{"allowOverrides": ["everything"], "credential": "x"}',
                                    '{"allowOverrides": [], "credential": "../../etc/passwd"}', '{"x": 1}'])
def test_a_policy_the_function_cannot_read_keeps_it_from_starting(tmp_path, policy):
    """Fail closed: a function whose TRAIN_CALL_POLICY is broken does not serve at all (exit 2, a log line)."""
    funcenv.function_python(TRAIN_DIR)
    env = funcenv.function_environment(TRAIN_DIR, free_port(), {
        "MODEL_NAME": "m", "MODEL_STORE_URL": "http://127.0.0.1:9", "TRAIN_CALL_POLICY": policy,
        "OPENFAAS_SECRETS_DIR": str(tmp_path)})
    done = subprocess.run(funcenv.function_command(TRAIN_DIR), env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2 and "TRAIN_CALL_POLICY" in done.stderr, done.stderr[-2000:]
