"""The functions when something is wrong, end to end: bad training requests, credentials the store refuses or
that are missing, a model or version the store does not have, and configuration a function refuses at start.
Each is answered (or exits) saying what was wrong."""

from __future__ import annotations

import pytest
import requests

from function_harness import IRIS_SAMPLES, PREDICT_DIR, TRAIN_DIR, function_env, predict_rows

pytestmark = pytest.mark.server


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
    response = predict_rows(bogus, IRIS_SAMPLES["setosa"])
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
    assert predict_rows(function, IRIS_SAMPLES["setosa"]).json()["predictions"] == ["setosa"] * 3
    missing = iris.run(PREDICT_DIR, function_env(iris.store, "", OPENFAAS_SECRETS_DIR=str(tmp_path / "none")))
    error = predict_rows(missing, IRIS_SAMPLES["setosa"]).json()["error"]
    assert "no token: neither $MODEL_STORE_TOKEN nor" in error and "model-store-token" in error


def test_missing_model_or_version_is_a_404(iris):
    with iris.store.admin() as admin:
        token = admin.create_token(models=["nosuch"], rights=["read"])
    nosuch = iris.run(PREDICT_DIR, function_env(iris.store, token.token, model="nosuch"))
    response = predict_rows(nosuch, IRIS_SAMPLES["setosa"])
    assert response.status_code == 404 and "nosuch" in response.json()["error"]
    assert requests.get(f"{nosuch.url}/v2/health/ready").status_code == 503
    pinned = iris.run(PREDICT_DIR, function_env(iris.store, iris.reader.token, MODEL_VERSION="99"))
    response = predict_rows(pinned, IRIS_SAMPLES["setosa"])
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
