"""The train function on other data than the default, end to end, each test with its own store: a CSV table
of one's own, the digits images (predicted from PNG pictures) and a regression; and the template's example
function, what `faas-cli new` starts from."""

from __future__ import annotations

import base64
import io
import subprocess

import numpy as np
import pytest
import requests
from mlfunctions_harness.processes import free_port, wait_for
from PIL import Image

from function_harness import (
    IRIS_SAMPLES,
    PREDICT_DIR,
    TEMPLATE_DIR,
    TRAIN_DIR,
    function_env,
    predict_rows,
    train_model,
)
from local_openfaas import funcenv

pytestmark = pytest.mark.server


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
    answer = predict_rows(predict, IRIS_SAMPLES["setosa"] + IRIS_SAMPLES["virginica"]).json()
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
    assert train_model(train_digits)["metrics"]["accuracy"] >= 0.9
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
    rows = predict_rows(predict, digits.data[-3:].tolist()).json()
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
    metrics = train_model(train_diabetes)["metrics"]
    assert set(metrics) == {"r2", "mae", "rmse", "onnxAgreement"} and metrics["r2"] > 0.2
    regress = run_function(PREDICT_DIR, function_env(model_store, writer.token, model="diabetes"))
    values = predict_rows(regress, [[0.0] * 10]).json()["predictions"]
    assert isinstance(values[0], float) and 100 < values[0] < 200


def test_template_example_function_runs(tmp_path, function_venvs):
    # What `faas-cli new --lang mlfunctions-python3` starts from must run on the template as it is (the train
    # function's environment has the template's requirements plus Starlette, which the example uses).
    port = free_port()
    env = {**funcenv.function_environment(TRAIN_DIR, port), "FUNCTION_DIR": str(TEMPLATE_DIR / "function")}
    process = subprocess.Popen(
        funcenv.function_command(TRAIN_DIR), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    def answer() -> tuple[requests.Response] | None:
        # In a tuple: any answer ends the wait, and a Response is false when its status is an error.
        assert process.poll() is None, f"the example function exited with {process.returncode}"
        try:
            return (requests.post(f"http://127.0.0.1:{port}/", data=b"hi", timeout=1),)
        except requests.ConnectionError:
            return None

    try:
        (response,) = wait_for(answer, 30, "the template's example function to answer")
        assert response.json() == {"hello": "hi"}
    finally:
        process.terminate()
        process.wait(15)
