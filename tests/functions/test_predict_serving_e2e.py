"""The predict function serving a trained iris model, end to end on 127.0.0.1: a real iris-server, the train
and predict functions as real processes in their own venvs (the predict one without scikit-learn), over HTTP.
What is served, on which paths and protocols, and how bad input and limits are answered."""

from __future__ import annotations

import pytest
import requests

from function_harness import IRIS_SAMPLES, predict_rows

pytestmark = pytest.mark.server


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
        response = predict_rows(iris.predict, samples)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [species] * 3, "model": {"name": "iris", "version": 1}}


def test_predict_with_probabilities_and_on_the_kserve_path(iris):
    response = predict_rows(
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
    too_many = predict_rows(iris.predict, [[5.1, 3.5, 1.4, 0.2]] * 51)
    assert too_many.status_code == 413 and "at most 50" in too_many.json()["error"]
    too_big = requests.post(
        f"{url}/", data=b"{" + b" " * 200_000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413 and "larger than 100000 bytes" in too_big.json()["error"]
    other_model = predict_rows(iris.predict, [[5.1, 3.5, 1.4, 0.2]], path="/v1/models/wine:predict")
    assert other_model.status_code == 404 and "serves model 'iris', not 'wine'" in other_model.json()["error"]
    other_version = requests.post(f"{url}/v2/models/iris/versions/7/infer", json={})
    assert other_version.status_code == 404 and "not version 7" in other_version.json()["error"]
    assert requests.get(f"{url}/").json() == {"error": "method GET is not allowed on /"}
    assert requests.get(f"{url}/nope").json() == {"error": "no such endpoint: GET /nope"}
    # The function is still fine after all that.
    assert predict_rows(iris.predict, IRIS_SAMPLES["setosa"]).status_code == 200
