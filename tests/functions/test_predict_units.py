"""The predict function's pure parts on real ONNX models made by the training code: the served model, the two
JSON protocols and PNG input. (The process itself is tested over HTTP in test_functions_e2e.py.)"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

import function_harness  # noqa: F401  (puts the function folders on sys.path)
import inference_protocol as protocol
import training_job
import training_request
from function_harness import IRIS_SAMPLES
from input_errors import InvalidInput, TooLarge
from png_input import check_pixel_budget, png_row, png_rows, png_size
from served_model import ServedModel, UnservableModel

MAX_ROWS = 100


def _model(dataset: str, estimator: str, params: dict | None = None) -> ServedModel:
    outcome = training_job.run(training_request.TrainingSpec(dataset, estimator, params or {}, 0.2, 42))
    return ServedModel(outcome.onnx_model, dataset, 3, outcome.metadata)


@pytest.fixture(scope="module")
def iris() -> ServedModel:
    return _model("iris", "LogisticRegression", {"max_iter": 500})


@pytest.fixture(scope="module")
def diabetes() -> ServedModel:
    return _model("diabetes", "Ridge")


@pytest.fixture(scope="module")
def digits() -> ServedModel:
    return _model("digits", "LogisticRegression", {"max_iter": 2000})


def _rows(model: ServedModel, rows: list[list[float]]) -> np.ndarray:
    return protocol.rows_array(rows, model, "instances", MAX_ROWS)


# -- the served model ----------------------------------------------------------------------------------------


def test_classifier_answers_class_names_and_probabilities(iris):
    assert (iris.task, iris.features, iris.classes) == (
        "classification",
        4,
        ["setosa", "versicolor", "virginica"],
    )
    for species, samples in IRIS_SAMPLES.items():
        prediction = iris.predict(_rows(iris, samples), probabilities=True)
        assert prediction.predictions == [species] * 3
        assert prediction.probabilities.shape == (3, 3)
        assert np.allclose(prediction.probabilities.sum(axis=1), 1, atol=1e-5)


def test_regressor_answers_numbers(diabetes):
    assert (diabetes.task, diabetes.features, diabetes.classes, diabetes.has_probabilities) == (
        "regression",
        10,
        None,
        False,
    )
    prediction = diabetes.predict(_rows(diabetes, [[0.0] * 10, [0.05] * 10]))
    assert all(isinstance(v, float) for v in prediction.predictions)
    assert 100 < prediction.predictions[0] < 200  # the diabetes target's mean is about 152


def test_model_without_mlfunctions_metadata_uses_the_stores():
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    plain = to_onnx(
        LogisticRegression(max_iter=500).fit(x, y), x[:1].astype(np.float32), options={"zipmap": False}
    ).SerializeToString()
    model = ServedModel(plain, "iris", 1, {"classes": ["a", "b", "c"]})
    assert model.task == "classification" and model.features == 4
    assert model.predict(_rows(model, IRIS_SAMPLES["virginica"])).predictions == ["c", "c", "c"]
    bare = ServedModel(plain, "iris", 1, {})
    assert bare.predict(_rows(bare, IRIS_SAMPLES["setosa"])).predictions == [0, 0, 0]


@pytest.mark.parametrize("data", [b"", b"not onnx at all", b"\x08\x07" * 50])
def test_invalid_artifact_is_unservable(data):
    with pytest.raises(UnservableModel, match="model m v2 is not a valid ONNX model"):
        ServedModel(data, "m", 2)


# -- KServe v1 -----------------------------------------------------------------------------------------------


def test_v1_parse_and_answer(iris):
    document = protocol.decode_json(json.dumps({"instances": IRIS_SAMPLES["setosa"]}).encode(), lambda: "{}")
    request = protocol.parse_v1(document, iris, query_probabilities="true", max_rows=MAX_ROWS)
    assert request.rows.dtype == np.float32 and request.rows.shape == (3, 4) and request.probabilities
    answer = protocol.v1_answer(iris, iris.predict(request.rows, request.probabilities))
    assert answer["predictions"] == ["setosa"] * 3 and answer["model"] == {"name": "iris", "version": 3}
    assert set(answer["probabilities"][0]) == {"setosa", "versicolor", "virginica"}
    assert answer["probabilities"][0]["setosa"] > 0.9
    json.dumps(answer)


def test_v1_integers_are_numbers_too(iris):
    request = protocol.parse_v1({"instances": [[5, 3, 1, 0]]}, iris, None, MAX_ROWS)
    assert request.rows.tolist() == [[5.0, 3.0, 1.0, 0.0]] and not request.probabilities


V1_BAD = [
    ({}, 'has no "instances"'),
    ({"inputs": [1]}, "an Open Inference Protocol v2 request goes to /v2/models/<model>/infer"),
    ({"instances": "5.1,3.5"}, "instances must be a non-empty list of rows"),
    ({"instances": []}, "instances must be a non-empty list of rows"),
    ({"instances": [5.1, 3.5, 1.4, 0.2]}, "got a flat list of numbers (wrap one row in another list"),
    ({"instances": [[5.1, 3.5, 1.4]]}, "instances[0] has 3 values; expected 4 numbers"),
    ({"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2]]}, "instances[1] has 2 values; expected 4 numbers"),
    ({"instances": [[5.1, 3.5, "1.4", 0.2]]}, 'instances[0][2] is string "1.4"; expected a number'),
    ({"instances": [[5.1, True, 1.4, 0.2]]}, "instances[0][1] is boolean true; expected a number"),
    ({"instances": [[5.1, None, 1.4, 0.2]]}, "instances[0][1] is null null; expected a number"),
    ({"instances": [[[5.1, 3.5, 1.4, 0.2]]]}, "instances[0][0] is array"),
    ({"instances": [{"a": 1}]}, "instances[0] is object"),
    ({"instances": [[5.1, 3.5, 1.4, 1e400]]}, "instances[0][3] is not a finite number"),
    ({"instances": [[5.1, 3.5, 1.4, 0.2]], "probabilities": "yes"}, '"probabilities" must be true or false'),
]


@pytest.mark.parametrize(("document", "expected"), V1_BAD)
def test_v1_bad_input_says_what_was_expected(iris, document, expected):
    with pytest.raises(InvalidInput) as caught:
        protocol.parse_v1(document, iris, None, MAX_ROWS)
    assert expected in str(caught.value)
    assert type(caught.value) is InvalidInput  # 400, not 413


def test_v1_too_many_rows_is_too_large(iris):
    with pytest.raises(TooLarge, match="101 rows; at most 100"):
        protocol.parse_v1({"instances": [[1, 2, 3, 4]] * 101}, iris, None, MAX_ROWS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", 'the request body is empty; expected a JSON object like {"instances": [[x1, x2, x3, x4]]}'),
        (b"   \n", "the request body is empty"),
        (b"{instances: [[1,2,3,4]]}", "the request body is not valid JSON"),
        (b"[[1, 2, 3, 4]]", "the request body is a JSON array; expected a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_undecodable_bodies(iris, body, expected):
    with pytest.raises(InvalidInput) as caught:
        protocol.decode_json(body, lambda: protocol.v1_example(iris))
    assert expected in str(caught.value)


def test_probabilities_flag_from_query_and_body(iris):
    rows = {"instances": [[1, 2, 3, 4]]}
    assert protocol.parse_v1(rows, iris, "1", MAX_ROWS).probabilities
    assert not protocol.parse_v1({**rows, "probabilities": False}, iris, "true", MAX_ROWS).probabilities
    with pytest.raises(InvalidInput, match="the probabilities query parameter must be true or false"):
        protocol.parse_v1(rows, iris, "maybe", MAX_ROWS)


def test_probabilities_from_a_regressor_are_refused(diabetes):
    with pytest.raises(InvalidInput, match="is a regressor: it gives no class probabilities"):
        protocol.parse_v1({"instances": [[0.0] * 10], "probabilities": True}, diabetes, None, MAX_ROWS)


# -- Open Inference Protocol v2 ------------------------------------------------------------------------------


def _v2(data, shape=None, datatype="FP32", **extra):
    flat = [v for row in data for v in row] if data and isinstance(data[0], list) else data
    return {
        "inputs": [{"name": "input", "shape": shape or [len(data), 4], "datatype": datatype, "data": flat}],
        **extra,
    }


def test_v2_parse_and_answer(iris):
    samples = IRIS_SAMPLES["versicolor"]
    outputs = [{"name": "predictions"}, {"name": "probabilities"}]
    request = protocol.parse_v2(_v2(samples, id="req-1", outputs=outputs), iris, None, MAX_ROWS)
    assert request.rows.shape == (3, 4) and request.probabilities and request.request_id == "req-1"
    answer, binary = protocol.v2_answer(iris, iris.predict(request.rows, True), request)
    assert binary == []  # nothing asked for as raw bytes: the document is the whole answer
    assert answer["model_name"] == "iris" and answer["model_version"] == "3" and answer["id"] == "req-1"
    predictions, probabilities = answer["outputs"]
    assert predictions == {
        "name": "predictions",
        "shape": [3],
        "datatype": "BYTES",
        "data": ["versicolor"] * 3,
    }
    assert probabilities["shape"] == [3, 3] and len(probabilities["data"]) == 9
    assert probabilities["parameters"]["classes"] == ["setosa", "versicolor", "virginica"]
    # Only what was asked for, as the protocol says; "parameters" asks for probabilities on top of
    # predictions.
    only = protocol.parse_v2(_v2(samples, outputs=[{"name": "probabilities"}]), iris, None, MAX_ROWS)
    assert [
        t["name"] for t in protocol.v2_answer(iris, iris.predict(only.rows, True), only)[0]["outputs"]
    ] == ["probabilities"]
    both = protocol.parse_v2(_v2(samples, parameters={"probabilities": True}), iris, None, MAX_ROWS)
    assert both.outputs == ("predictions", "probabilities")


def test_v2_nested_data_and_integer_types(iris):
    request = protocol.parse_v2(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [[5, 3, 1, 0]]}]},
        iris,
        None,
        10,
    )
    assert request.rows.tolist() == [[5, 3, 1, 0]] and request.outputs == ("predictions",)


V2_BAD = [
    ({}, '"inputs" must be a list with exactly one tensor'),
    ({"inputs": []}, '"inputs" must be a list with exactly one tensor'),
    (_v2([[1, 2, 3, 4]], datatype="BYTES"), 'datatype "BYTES" is not supported'),
    (_v2([[1, 2, 3, 4]], datatype=None), "datatype null is not supported"),
    (_v2([[1, 2, 3, 4]], shape=[4]), "inputs[0].shape must be [rows, 4], got [4]"),
    (_v2([[1, 2, 3, 4]], shape=[1, 3]), "inputs[0].shape is [1, 3]; the model takes 4 features per row"),
    (_v2([1, 2, 3, 4, 5], shape=[1, 4]), "inputs[0].data has 5 values but shape [1, 4] needs 4"),
    (_v2([1, 2, "3", 4], shape=[1, 4]), 'inputs[0].data[0][2] is string "3"; expected a number'),
    (_v2([[1, 2, 3, 4]], outputs=[{"name": "logits"}]), 'unknown output "logits"'),
    (
        {"inputs": [{"shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
        "inputs[0].name must be a string",
    ),
]


@pytest.mark.parametrize(("document", "expected"), V2_BAD)
def test_v2_bad_input_says_what_was_expected(iris, document, expected):
    with pytest.raises(InvalidInput) as caught:
        protocol.parse_v2(document, iris, None, MAX_ROWS)
    assert expected in str(caught.value)


def test_v2_metadata(iris, diabetes):
    meta = protocol.v2_metadata(iris)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["predictions", "probabilities"]
    assert meta["versions"] == ["3"] and meta["parameters"]["classes"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    assert [o["name"] for o in protocol.v2_metadata(diabetes)["outputs"]] == ["predictions"]


# -- PNG input for image models ------------------------------------------------------------------------------


def _png(pixels: np.ndarray, scale: int = 4) -> bytes:
    image = Image.fromarray(pixels.astype(np.uint8), mode="L").resize(
        (pixels.shape[1] * scale, pixels.shape[0] * scale), Image.Resampling.NEAREST
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digit_images():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images[-20:], data.target[-20:]


def test_png_of_a_digit_gives_its_pixels_back(digits, digit_images):
    images, _ = digit_images
    light_on_dark = images[0] * (255 / 16)
    row = png_row(_png(light_on_dark), digits.image)
    assert row.shape == (1, 64)
    assert np.abs(row.reshape(8, 8) - images[0]).max() < 0.2  # PNG holds 8 bits; 16 levels survive
    # Dark ink on white paper is the same digit.
    inverted = png_row(_png(255 - light_on_dark), digits.image)
    assert np.abs(inverted - row).max() < 0.2


def test_png_digits_are_recognised(digits, digit_images):
    images, targets = digit_images
    rows = np.vstack([png_row(_png(image * (255 / 16)), digits.image) for image in images]).astype(np.float32)
    predicted = digits.predict(rows).predictions
    assert np.mean(np.asarray(predicted) == targets) >= 0.9


def test_b64_instances_for_image_models(digits, digit_images):
    images, _targets = digit_images
    pngs = [_png(image * (255 / 16)) for image in images[:3]]
    instances = [{"b64": base64.b64encode(png).decode()} for png in pngs]
    request = protocol.parse_v1({"instances": instances}, digits, None, MAX_ROWS)
    # Only unwrapped by the protocol: the handler checks the pixel budget, then decodes in a worker thread.
    assert request.rows is None
    assert request.pictures == (
        ("instances[0]", pngs[0]),
        ("instances[1]", pngs[1]),
        ("instances[2]", pngs[2]),
    )
    assert png_rows(request.pictures, digits.image).shape == (3, 64)
    with pytest.raises(InvalidInput, match=r"instances\[0\]\.b64 is not valid base64"):
        protocol.parse_v1({"instances": [{"b64": "***"}]}, digits, None, MAX_ROWS)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is empty; expected a PNG image"),
        (b"GIF89a....", "is not a readable PNG image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "is not a readable PNG image"),
    ],
)
def test_bad_png(digits, data, expected):
    with pytest.raises(InvalidInput, match=expected):
        png_row(data, digits.image)


def test_pixel_budget_is_read_from_png_headers(digits, digit_images):
    small = _png(digit_images[0][0] * (255 / 16))  # 32x32
    assert png_size(small, "p") == (32, 32)
    check_pixel_budget([("a", small), ("b", small)], budget=2 * 32 * 32)
    with pytest.raises(
        TooLarge, match=r"b is 32x32 pixels, bringing the request to 2048 pixels; at most 2047"
    ):
        check_pixel_budget([("a", small), ("b", small)], budget=2 * 32 * 32 - 1)
    with pytest.raises(TooLarge, match=r"^a is 32x32 pixels; at most 1000 pixels"):
        check_pixel_budget([("a", small)], budget=1000)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\x00" * 8, "its first chunk is not a valid IHDR"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIDAT" + b"\x00\x00\x00\x01" * 2, "not a valid IHDR"),
        (b"\x89PNG\r\n\x1a\n\x00", "does not start with a PNG signature"),
    ],
)
def test_png_headers_that_are_not(data, expected):
    with pytest.raises(InvalidInput, match=expected):
        png_size(data, "the body")
