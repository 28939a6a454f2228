"""End to end on 127.0.0.1: a real iris-server, the train and predict functions as real processes in their own
venvs (the predict one without scikit-learn), talking HTTP."""

from __future__ import annotations

import base64
import io
import subprocess
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image

from function_harness import (
    IRIS_SAMPLES,
    PREDICT_DIR,
    TEMPLATE_DIR,
    TRAIN_DIR,
    FunctionProcess,
    ModelStore,
    function_env,
)
from mlfunctions_harness.model_store import free_port
from local_openfaas import funcenv

pytestmark = pytest.mark.server

SWAP_TIMEOUT_SECONDS = 20.0


def _train(function: FunctionProcess, **body) -> dict:
    response = requests.post(f"{function.url}/", json=body or None, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def _predict(function: FunctionProcess, rows, path: str = "/", **params) -> requests.Response:
    return requests.post(f"{function.url}{path}", json={"instances": rows}, params=params, timeout=30)


def _served_version(function: FunctionProcess) -> int:
    response = _predict(function, IRIS_SAMPLES["setosa"][:1])
    assert response.status_code == 200, response.text
    return response.json()["model"]["version"]


def _wait_for_version(function: FunctionProcess, version: int) -> None:
    deadline = time.monotonic() + SWAP_TIMEOUT_SECONDS
    while _served_version(function) != version:
        assert time.monotonic() < deadline, f"still not serving version {version}:\n{function.log()}"
        time.sleep(0.1)


# -- a shared store with one trained iris model, for tests that only read ------------------------------------


class IrisStack:
    def __init__(self, tmp_path_factory):
        self.dir = tmp_path_factory.mktemp("iris-stack")
        self.store = ModelStore(self.dir / "store").start()
        self.writer = self.store.token(["iris"], ["read", "write"])
        self.reader = self.store.token(["iris"], ["read"])
        self.functions: list[FunctionProcess] = []
        self.train = self.run(TRAIN_DIR, function_env(self.store, self.writer.token))
        self.trained = _train(self.train)
        self.predict = self.run(
            PREDICT_DIR,
            function_env(self.store, self.reader.token, MAX_BATCH_ROWS="50", MAX_REQUEST_BYTES="100000"),
        )

    def run(self, function_dir, env, wait: bool = True) -> FunctionProcess:
        function = FunctionProcess(
            function_dir, env, self.dir / f"{function_dir.name}-{len(self.functions)}.log"
        )
        self.functions.append(function)
        return function.start(wait=wait)

    def close(self) -> None:
        for function in self.functions:
            function.stop()
        self.store.stop()


@pytest.fixture(scope="module")
def iris(tmp_path_factory, function_venvs):
    stack = IrisStack(tmp_path_factory)
    yield stack
    stack.close()


def test_trained_iris_is_stored_with_its_metrics(iris):
    assert iris.trained["model"] == {"name": "iris", "version": 1}
    assert iris.trained["metrics"]["accuracy"] >= 0.9 and iris.trained["durationSeconds"] > 0
    with iris.store.admin() as admin:
        stored = admin.get_version("iris", 1)
    assert stored.format == "onnx"
    assert stored.metadata["metrics"]["accuracy"] >= 0.9 and "f1" in stored.metadata["metrics"]
    assert stored.metadata["estimator"] == "LogisticRegression" and stored.metadata["dataset"] == "iris"
    assert stored.metadata["params"] == {"max_iter": 500}  # from stack.yml's TRAIN_PARAMS
    assert stored.metadata["classes"] == ["setosa", "versicolor", "virginica"]


def test_predict_names_the_species(iris):
    for species, samples in IRIS_SAMPLES.items():
        response = _predict(iris.predict, samples)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [species] * 3, "model": {"name": "iris", "version": 1}}


def test_predict_with_probabilities_and_on_the_kserve_path(iris):
    response = _predict(
        iris.predict, IRIS_SAMPLES["virginica"], path="/v1/models/iris:predict", probabilities="true"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == ["virginica"] * 3
    assert all(row["virginica"] > 0.5 and abs(sum(row.values()) - 1) < 1e-3 for row in body["probabilities"])
    in_body = requests.post(
        f"{iris.predict.url}/", json={"instances": [[5.1, 3.5, 1.4, 0.2]], "probabilities": True}
    )
    assert in_body.json()["probabilities"][0]["setosa"] > 0.9


def test_open_inference_protocol_v2(iris):
    url = iris.predict.url
    rows = IRIS_SAMPLES["versicolor"]
    request = {
        "id": "r1",
        "inputs": [
            {"name": "input", "shape": [3, 4], "datatype": "FP64", "data": [v for row in rows for v in row]}
        ],
    }
    response = requests.post(f"{url}/v2/models/iris/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris" and body["model_version"] == "1" and body["id"] == "r1"
    assert body["outputs"][0]["data"] == ["versicolor"] * 3
    assert requests.post(f"{url}/v2/models/iris/versions/1/infer", json=request).status_code == 200
    meta = requests.get(f"{url}/v2/models/iris").json()
    assert meta["inputs"][0]["shape"] == [-1, 4] and meta["versions"] == ["1"]
    assert requests.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert requests.get(f"{url}/v2/health/live").status_code == 200
    assert requests.get(f"{url}/v2/models/iris/ready").json()["ready"] is True
    assert requests.get(f"{url}/_/health").json()["model"] == {"name": "iris", "version": 1}


BAD_PREDICT_INPUTS = [
    # (path, content type, body, words the message must contain)
    ("/", "application/json", b"", ["body is empty", '"instances"']),
    ("/", "application/json", b"five point one", ["not valid JSON", '"instances"']),
    ("/", "application/json", b"[[5.1, 3.5, 1.4, 0.2]]", ["JSON array", "JSON object"]),
    ("/", "application/json", b'{"rows": [[5.1, 3.5, 1.4, 0.2]]}', ['no "instances"', "expected"]),
    ("/", "application/json", b'{"instances": []}', ["non-empty list of rows"]),
    ("/", "application/json", b'{"instances": [[5.1, 3.5, 1.4]]}', ["3 values", "expected 4 numbers"]),
    (
        "/",
        "application/json",
        b'{"instances": [[5.1, "3.5", 1.4, 0.2]]}',
        ["instances[0][1]", "expected a number"],
    ),
    ("/", "application/json", b'{"instances": [[5.1, 3.5, true, 0.2]]}', ["boolean", "expected a number"]),
    ("/", "application/json", b'{"instances": [[5.1, 3.5, null, 0.2]]}', ["null", "expected a number"]),
    ("/", "application/json", b'{"instances": [5.1, 3.5, 1.4, 0.2]}', ["flat list", "[[...]]"]),
    ("/", "application/json", b'{"instances": [[NaN, 3.5, 1.4, 0.2]]}', ["not a finite number"]),
    (
        "/?probabilities=maybe",
        "application/json",
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        ["true or false"],
    ),
    ("/", "image/png", b"\x89PNG\r\n\x1a\n", ["takes rows of 4 numbers, not images"]),
    (
        "/v2/models/iris/infer",
        "application/json",
        b'{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}',
        ["4 values but shape [2, 4] needs 8"],
    ),
    (
        "/v2/models/iris/infer",
        "application/json",
        b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "BYTES",'
        b' "data": ["a", "b", "c", "d"]}]}',
        ['"BYTES" is not supported', "numeric type"],
    ),
    ("/v2/models/iris/infer", "application/json", b'{"instances": [[1, 2, 3, 4]]}', ['"inputs"', "shape"]),
]


@pytest.mark.parametrize(("path", "content_type", "body", "words"), BAD_PREDICT_INPUTS)
def test_bad_input_is_a_400_that_says_what_was_expected(iris, path, content_type, body, words):
    response = requests.post(f"{iris.predict.url}{path}", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    for word in words:
        assert word in message, message


def test_limits_and_unknown_routes_answer_json(iris):
    url = iris.predict.url
    too_many = _predict(iris.predict, [[5.1, 3.5, 1.4, 0.2]] * 51)
    assert too_many.status_code == 413 and "at most 50" in too_many.json()["error"]
    too_big = requests.post(
        f"{url}/", data=b"{" + b" " * 200_000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413 and "larger than 100000 bytes" in too_big.json()["error"]
    other_model = _predict(iris.predict, [[5.1, 3.5, 1.4, 0.2]], path="/v1/models/wine:predict")
    assert other_model.status_code == 404 and "serves model 'iris', not 'wine'" in other_model.json()["error"]
    other_version = requests.post(f"{url}/v2/models/iris/versions/7/infer", json={})
    assert other_version.status_code == 404 and "not version 7" in other_version.json()["error"]
    assert requests.get(f"{url}/").json() == {"error": "method GET is not allowed on /"}
    assert requests.get(f"{url}/nope").json() == {"error": "no such endpoint: GET /nope"}
    # The function is still fine after all that.
    assert _predict(iris.predict, IRIS_SAMPLES["setosa"]).status_code == 200


def test_bad_training_requests_are_400s_and_store_nothing(iris):
    url = iris.train.url
    cases = [
        (
            {"json": {"estimator": "XGBClassifier"}},
            ["unknown estimator 'XGBClassifier'", "RandomForestClassifier"],
        ),
        (
            {"json": {"estimator": "SVC", "params": {"gamma_": 1}}},
            ["unknown parameter 'gamma_' for SVC", "gamma"],
        ),
        ({"json": {"estimator": "SVC", "params": {"C": -1}}}, ["SVC could not be trained", "'C' parameter"]),
        ({"json": {"dataset": "diabetes"}}, ["LogisticRegression is a classifier", "regression dataset"]),
        ({"json": {"testSize": 2}}, ["testSize must be a number strictly between 0 and 1"]),
        ({"data": b"{oops", "headers": {"Content-Type": "application/json"}}, ["not valid JSON"]),
        ({"data": b"a,b\n1,2\n", "headers": {"Content-Type": "text/csv"}}, ["no 'target' column"]),
    ]
    for request, words in cases:
        response = requests.post(f"{url}/", timeout=120, **request)
        assert response.status_code == 400, response.text
        for word in words:
            assert word in response.json()["error"], response.json()
    with iris.store.admin() as admin:
        assert [v.version for v in admin.list_versions("iris")] == [1]


def test_wrong_credentials_give_clear_errors(iris):
    bogus = iris.run(PREDICT_DIR, function_env(iris.store, "not-a-real-token"))
    response = _predict(bogus, IRIS_SAMPLES["setosa"])
    assert response.status_code == 502
    assert "refused the function's credential" in response.json()["error"]
    assert "$MODEL_STORE_TOKEN" in response.json()["error"]
    assert requests.get(f"{bogus.url}/_/health").status_code == 200  # up, and saying why it cannot serve

    read_only_train = iris.run(TRAIN_DIR, function_env(iris.store, iris.reader.token))
    response = requests.post(f"{read_only_train.url}/", timeout=120)
    assert response.status_code == 502 and "not allowed" in response.json()["error"]


def test_token_from_the_mounted_secret_file(iris, tmp_path):
    (tmp_path / "model-store-token").write_text(iris.reader.token + "\n")
    env = function_env(iris.store, "", OPENFAAS_SECRETS_DIR=str(tmp_path))
    function = iris.run(PREDICT_DIR, env)
    assert _predict(function, IRIS_SAMPLES["setosa"]).json()["predictions"] == ["setosa"] * 3
    missing = iris.run(PREDICT_DIR, function_env(iris.store, "", OPENFAAS_SECRETS_DIR=str(tmp_path / "none")))
    error = _predict(missing, IRIS_SAMPLES["setosa"]).json()["error"]
    assert "no token: neither $MODEL_STORE_TOKEN nor" in error and "model-store-token" in error


def test_missing_model_or_version_is_a_404(iris):
    with iris.store.admin() as admin:
        token = admin.create_token(models=["nosuch"], rights=["read"])
    nosuch = iris.run(PREDICT_DIR, function_env(iris.store, token.token, model="nosuch"))
    response = _predict(nosuch, IRIS_SAMPLES["setosa"])
    assert response.status_code == 404 and "nosuch" in response.json()["error"]
    assert requests.get(f"{nosuch.url}/v2/health/ready").status_code == 503
    pinned = iris.run(PREDICT_DIR, function_env(iris.store, iris.reader.token, MODEL_VERSION="99"))
    response = _predict(pinned, IRIS_SAMPLES["setosa"])
    assert response.status_code == 404 and "version 99" in response.json()["error"]


@pytest.mark.parametrize(
    ("function_dir", "env", "words"),
    [
        (PREDICT_DIR, {"MODEL_NAME": ""}, ["MODEL_NAME is required"]),
        (PREDICT_DIR, {"MODEL_VERSION": "latest"}, ["MODEL_VERSION='latest' must be an integer"]),
        (PREDICT_DIR, {"MODEL_REFRESH_SECONDS": "-1"}, ["MODEL_REFRESH_SECONDS"]),
        (TRAIN_DIR, {"TRAIN_ESTIMATOR": "Foo"}, ["TRAIN_ESTIMATOR", "unknown estimator 'Foo'"]),
    ],
)
def test_misconfigured_function_exits_saying_why(iris, function_dir, env, words):
    function = iris.run(function_dir, {**function_env(iris.store, iris.reader.token), **env}, wait=False)
    assert function.process.wait(60) == 2
    for word in words:
        assert word in function.log()


# -- tests that change what is stored get their own store ----------------------------------------------------


def test_retrain_moves_predict_to_the_new_version_and_a_pinned_one_stays(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    reader = model_store.token(["iris"], ["read"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    assert _train(train)["model"]["version"] == 1
    latest = run_function(PREDICT_DIR, function_env(model_store, reader.token, MODEL_REFRESH_SECONDS="0.3"))
    pinned = run_function(
        PREDICT_DIR, function_env(model_store, reader.token, MODEL_VERSION="1", MODEL_REFRESH_SECONDS="0.3")
    )
    assert _served_version(latest) == 1 and _served_version(pinned) == 1
    pid = latest.process.pid

    second = _train(train, estimator="RandomForestClassifier", params={"n_estimators": 30})
    assert second["model"]["version"] == 2 and second["metrics"]["accuracy"] >= 0.9
    _wait_for_version(latest, 2)
    assert latest.process.pid == pid and latest.process.poll() is None  # no restart
    for species, samples in IRIS_SAMPLES.items():
        assert _predict(latest, samples).json()["predictions"] == [species] * 3
    time.sleep(1.5)  # several refresh intervals
    assert _served_version(pinned) == 1


def test_swapping_models_drops_no_request(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    _train(train)
    predict = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    outcomes: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(
                    f"{predict.url}/", json={"instances": IRIS_SAMPLES["virginica"]}, timeout=30
                )
                outcomes.append((response.status_code, response.json().get("model", {}).get("version")))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for estimator in ("RandomForestClassifier", "GradientBoostingClassifier", "KNeighborsClassifier"):
            _train(train, estimator=estimator)
        deadline = time.monotonic() + SWAP_TIMEOUT_SECONDS
        while (not outcomes or outcomes[-1][1] != 4) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert {status for status, _ in outcomes} == {200}
    versions = [version for _, version in outcomes]
    assert versions == sorted(versions) and versions[0] == 1 and versions[-1] == 4  # never goes back


def test_store_down_keeps_the_loaded_model_and_a_cold_function_recovers(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    _train(train)
    warm = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    assert _served_version(warm) == 1

    model_store.stop()
    time.sleep(0.5)  # refreshes fail meanwhile
    assert _predict(warm, IRIS_SAMPLES["setosa"]).json()["predictions"] == ["setosa"] * 3

    cold = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    response = _predict(cold, IRIS_SAMPLES["setosa"])
    assert response.status_code == 503, response.text
    assert "unavailable" in response.json()["error"] and response.headers["Retry-After"] == "1"
    health = requests.get(f"{cold.url}/_/health")
    assert health.status_code == 200 and "unavailable" in health.json()["error"]  # up, and saying why
    assert requests.get(f"{cold.url}/v2/health/ready").status_code == 503
    training_down = requests.post(f"{train.url}/", timeout=120)
    assert training_down.status_code == 503 and "unavailable" in training_down.json()["error"]

    model_store.start()  # same port, same data
    deadline = time.monotonic() + SWAP_TIMEOUT_SECONDS
    while (response := _predict(cold, IRIS_SAMPLES["setosa"])).status_code != 200:
        assert response.status_code == 503 and time.monotonic() < deadline, response.text
        time.sleep(0.1)
    assert response.json()["predictions"] == ["setosa"] * 3
    assert requests.get(f"{cold.url}/v2/health/ready").status_code == 200


def test_csv_training_serves_the_csv_labels(model_store, run_function):
    from sklearn.datasets import load_iris

    data = load_iris()
    names = {0: "small", 1: "medium", 2: "large"}
    lines = ["sl,sw,pl,pw,target"] + [
        ",".join(map(str, row)) + f",{names[t]}" for row, t in zip(data.data, data.target, strict=False)
    ]
    writer = model_store.token(["flowers"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token, model="flowers"))
    response = requests.post(
        f"{train.url}/?estimator=DecisionTreeClassifier&params=%7B%22max_depth%22%3A3%7D",
        data="\n".join(lines).encode(),
        headers={"Content-Type": "text/csv"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert response.json()["dataset"].startswith("csv:sha256:")
    predict = run_function(PREDICT_DIR, function_env(model_store, writer.token, model="flowers"))
    answer = _predict(predict, IRIS_SAMPLES["setosa"] + IRIS_SAMPLES["virginica"]).json()
    assert answer["predictions"] == ["small"] * 3 + ["large"] * 3


def test_digits_from_png_and_regression_through_the_same_functions(model_store, run_function):
    from sklearn.datasets import load_digits

    writer = model_store.token(["digits", "diabetes"], ["read", "write"])
    train_digits = run_function(
        TRAIN_DIR,
        function_env(
            model_store,
            writer.token,
            model="digits",
            TRAIN_DATASET="digits",
            TRAIN_PARAMS='{"max_iter": 3000}',
        ),
    )
    assert _train(train_digits)["metrics"]["accuracy"] >= 0.9
    predict = run_function(PREDICT_DIR, function_env(model_store, writer.token, model="digits"))

    digits = load_digits()
    hits = 0
    for image, target in zip(digits.images[-10:], digits.target[-10:], strict=False):
        picture = Image.fromarray((255 - image * 255 / 16).astype(np.uint8), mode="L").resize((32, 32))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")  # dark ink on a light background, 32x32, as a user would draw it
        response = requests.post(
            f"{predict.url}/?probabilities=true",
            data=buffer.getvalue(),
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 200, response.text
        hits += response.json()["predictions"] == [int(target)]
        b64 = {"instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]}
        assert (
            requests.post(f"{predict.url}/", json=b64).json()["predictions"] == response.json()["predictions"]
        )
    assert hits >= 8
    rows = _predict(predict, digits.data[-3:].tolist()).json()
    assert rows["predictions"] == digits.target[-3:].tolist()

    train_diabetes = run_function(
        TRAIN_DIR,
        function_env(
            model_store,
            writer.token,
            model="diabetes",
            TRAIN_DATASET="diabetes",
            TRAIN_ESTIMATOR="Ridge",
            TRAIN_PARAMS="",
        ),
    )
    metrics = _train(train_diabetes)["metrics"]
    assert set(metrics) == {"r2", "mae", "rmse", "onnxAgreement"} and metrics["r2"] > 0.2
    regress = run_function(PREDICT_DIR, function_env(model_store, writer.token, model="diabetes"))
    values = _predict(regress, [[0.0] * 10]).json()["predictions"]
    assert isinstance(values[0], float) and 100 < values[0] < 200


def test_template_example_function_runs(tmp_path, function_venvs):
    # What `faas-cli new --lang mlfunctions-python3` starts from must run on the template as it is (the train
    # function's environment has the template's requirements plus Starlette, which the example uses).
    port = free_port()
    env = {**funcenv.function_environment(TRAIN_DIR, port), "FUNCTION_DIR": str(TEMPLATE_DIR / "function")}
    process = subprocess.Popen(
        funcenv.function_command(TRAIN_DIR), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.post(f"http://127.0.0.1:{port}/", data=b"hi", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        assert response.json() == {"hello": "hi"}
    finally:
        process.terminate()
        process.wait(15)
