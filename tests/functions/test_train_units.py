"""The training function's pure parts: configuration and overrides, datasets, estimators, training, ONNX
export."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest

import function_harness  # noqa: F401  (puts the function folders on sys.path)
import datasets
import estimators
import onnx_export
import training
import training_job
import training_request
from training_errors import TrainingInputError

BASE = training_request.TrainingSpec("iris", "LogisticRegression", {"max_iter": 500}, 0.2, 42)


# -- configuration and request overrides ---------------------------------------------------------------------


def test_environment_defaults_and_values():
    assert training_request.from_environment({}) == training_request.TrainingSpec(
        "iris", "LogisticRegression", {}, 0.2, 42
    )
    spec = training_request.from_environment(
        {
            "TRAIN_DATASET": "wine",
            "TRAIN_ESTIMATOR": "RandomForestClassifier",
            "TRAIN_PARAMS": '{"n_estimators": 20}',
            "TRAIN_TEST_SIZE": "0.3",
        }
    )
    assert (spec.dataset, spec.estimator, spec.params, spec.test_size) == (
        "wine",
        "RandomForestClassifier",
        {"n_estimators": 20},
        0.3,
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TRAIN_ESTIMATOR": "XGBoost"}, ["TRAIN_ESTIMATOR", "'XGBoost'", "LogisticRegression"]),
        ({"TRAIN_DATASET": "mnist"}, ["TRAIN_DATASET", "'mnist'", "iris"]),
        ({"TRAIN_PARAMS": "{max_iter: 3}"}, ["TRAIN_PARAMS", "not valid JSON"]),
        ({"TRAIN_PARAMS": "[1, 2]"}, ["TRAIN_PARAMS", "JSON object"]),
        ({"TRAIN_TEST_SIZE": "1.5"}, ["TRAIN_TEST_SIZE", "between 0 and 1"]),
    ],
)
def test_environment_errors_name_the_variable(env, names):
    with pytest.raises(TrainingInputError) as caught:
        training_request.from_environment(env)
    for name in names:
        assert name in str(caught.value)


def test_overrides_apply_and_new_estimator_drops_configured_params():
    spec = training_request.with_overrides(
        BASE, {"estimator": "RandomForestClassifier", "testSize": 0.25, "randomState": 7}, csv_body=False
    )
    assert (spec.estimator, spec.params, spec.test_size, spec.random_state) == (
        "RandomForestClassifier",
        {},
        0.25,
        7,
    )
    same = training_request.with_overrides(BASE, {"estimator": "LogisticRegression"}, csv_body=False)
    assert same.params == {"max_iter": 500}
    explicit = training_request.with_overrides(
        BASE, {"estimator": "SVC", "params": {"C": 2.0}, "dataset": "wine"}, csv_body=False
    )
    assert (explicit.estimator, explicit.params, explicit.dataset) == ("SVC", {"C": 2.0}, "wine")


@pytest.mark.parametrize(
    ("overrides", "csv_body", "expected"),
    [
        ({"estimater": "SVC"}, False, "unknown field 'estimater'"),
        ({"estimator": "SGDClassifier"}, False, "unknown estimator 'SGDClassifier'"),
        ({"estimator": 3}, False, "unknown estimator 3"),
        ({"dataset": "cifar"}, False, "unknown dataset 'cifar'"),
        ({"params": [1]}, False, "params must be a JSON object"),
        ({"testSize": 0}, False, "strictly between 0 and 1"),
        ({"testSize": 1}, False, "strictly between 0 and 1"),
        ({"testSize": True}, False, "strictly between 0 and 1"),
        ({"testSize": "0.2"}, False, "strictly between 0 and 1"),
        ({"randomState": -1}, False, "randomState"),
        ({"dataset": "iris"}, True, "cannot be combined with a CSV body"),
    ],
)
def test_bad_overrides_are_refused_with_a_message(overrides, csv_body, expected):
    with pytest.raises(TrainingInputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        training_request.with_overrides(BASE, overrides, csv_body=csv_body)


def test_query_overrides_parse_json_params_and_numbers():
    overrides = training_request.overrides_from_query(
        {"params": '{"C": 3}', "testSize": "0.3", "randomState": "9"}
    )
    assert overrides == {"params": {"C": 3}, "testSize": 0.3, "randomState": 9}
    with pytest.raises(TrainingInputError, match="not valid JSON"):
        training_request.overrides_from_query({"params": "{C: 3}"})
    with pytest.raises(TrainingInputError, match="testSize must be a number"):
        training_request.overrides_from_query({"testSize": "a fifth"})


# -- estimators ----------------------------------------------------------------------------------------------


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(TrainingInputError) as caught:
        estimators.build("RandomForestClassifier", {"n_trees": 10, "max_depth": 3}, 42)
    message = str(caught.value)
    assert "unknown parameter 'n_trees' for RandomForestClassifier" in message
    assert "n_estimators" in message and "max_depth" in message.split("valid parameters:")[1]


def test_random_state_is_seeded_unless_given():
    assert estimators.build("RandomForestClassifier", {}, 42).random_state == 42
    assert estimators.build("RandomForestClassifier", {"random_state": 3}, 42).random_state == 3
    assert "random_state" not in estimators.build("LinearRegression", {}, 42).get_params()


def test_bad_parameter_value_is_refused_with_scikit_learns_message():
    spec = training_request.with_overrides(
        BASE, {"estimator": "RandomForestClassifier", "params": {"n_estimators": -5}}, csv_body=False
    )
    with pytest.raises(TrainingInputError, match="n_estimators"):
        training.train(datasets.bundled("iris"), spec)


def test_allow_list_covers_both_tasks():
    assert estimators.task_of("SVC") == "classification"
    assert estimators.task_of("Ridge") == "regression"
    assert len(estimators.CLASSIFIERS) >= 9 and len(estimators.REGRESSORS) >= 10


# -- datasets ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "features", "classes"),
    [
        ("iris", 4, ["setosa", "versicolor", "virginica"]),
        ("wine", 13, ["class_0", "class_1", "class_2"]),
        ("breast_cancer", 30, ["malignant", "benign"]),
        ("digits", 64, list(range(10))),
        ("diabetes", 10, None),
    ],
)
def test_bundled_datasets(name, features, classes):
    data = datasets.bundled(name)
    assert data.x.shape[1] == features and len(data.x) == len(data.y)
    assert data.classes == classes
    assert data.task == ("regression" if classes is None else "classification")
    if classes is not None:
        assert set(np.unique(data.y)) == set(range(len(classes)))
    assert (data.image is not None) == (name == "digits")
    json.dumps(data.classes)  # they travel as JSON: numpy scalars would not


def test_digits_image_geometry():
    assert datasets.bundled("digits").image == {"width": 8, "height": 8, "maxValue": 16.0}


def test_csv_with_string_labels():
    body = b"a,b,target\n" + b"".join(
        f"{i},{i % 3},{'cat' if i % 2 else 'dog'}\n".encode() for i in range(10)
    )
    data = datasets.from_csv(body, "classification")
    assert data.feature_names == ["a", "b"] and data.classes == ["cat", "dog"]
    assert data.x.shape == (10, 2) and data.y.tolist() == [1, 0] * 5
    assert data.name.startswith("csv:sha256:")


def test_csv_integer_labels_stay_integers_in_numeric_order():
    body = b"target,x\n" + b"".join(
        f"{label},{i}\n".encode() for i, label in enumerate([10, 2, 10, 2, 10, 2])
    )
    data = datasets.from_csv(body, "classification")
    assert data.classes == [2, 10] and data.feature_names == ["x"]


def test_csv_for_regression():
    body = b"x,target\n" + b"".join(f"{i},{i * 1.5}\n".encode() for i in range(6))
    data = datasets.from_csv(body, "regression")
    assert data.classes is None and data.y.tolist() == [i * 1.5 for i in range(6)]


@pytest.mark.parametrize(
    ("body", "task", "expected"),
    [
        (b"", "classification", "empty"),
        (b"a,b\n1,2\n3,4\n5,6\n7,8\n9,0\n", "classification", "no 'target' column"),
        (b"target\n1\n2\n3\n4\n5\n", "classification", "no feature columns"),
        (b"a,target\n1,x\n2,y\n", "classification", "2 data rows; at least 5"),
        (b"a,target\n1,x\n2,y\n3\n4,x\n5,y\n", "classification", "line 4 has 1 fields; the header has 2"),
        (
            b"a,target\n1,x\n2,y\nseven,x\n4,x\n5,y\n",
            "classification",
            "line 4, column 'a': 'seven' is not a number",
        ),
        (b"a,target\n1,x\n2,y\nnan,x\n4,x\n5,y\n", "classification", "not a finite number"),
        (b"a,target\n1,x\n2,\n3,x\n4,x\n5,y\n", "classification", "line 3: the 'target' value is empty"),
        (b"a,target\n1,x\n2,y\n3,x\n4,x\n5,y\n", "regression", "column 'target': 'x' is not a number"),
        (b"a,target\n\xff\xfe,1\n", "classification", "not UTF-8"),
    ],
)
def test_bad_csv_is_refused_with_where_and_what(body, task, expected):
    with pytest.raises(TrainingInputError, match=expected):
        datasets.from_csv(body, task)


# -- training ------------------------------------------------------------------------------------------------


def test_iris_logistic_regression_is_accurate():
    trained = training.train(datasets.bundled("iris"), BASE)
    assert trained.metrics["accuracy"] >= 0.9 and trained.metrics["f1"] >= 0.9
    assert (trained.train_rows, trained.test_rows) == (120, 30)


def test_regression_metrics():
    spec = training_request.with_overrides(
        BASE, {"estimator": "Ridge", "dataset": "diabetes"}, csv_body=False
    )
    trained = training.train(datasets.bundled("diabetes"), spec)
    assert set(trained.metrics) == {"r2", "mae", "rmse"}
    assert 0.2 < trained.metrics["r2"] < 1 and trained.metrics["mae"] > 0


def test_same_request_trains_the_same_model():
    spec = training_request.with_overrides(
        BASE, {"estimator": "RandomForestClassifier", "params": {"n_estimators": 10}}, csv_body=False
    )
    first = training.train(datasets.bundled("wine"), spec)
    second = training.train(datasets.bundled("wine"), spec)
    assert first.metrics == second.metrics


@pytest.mark.parametrize(
    ("estimator", "dataset", "expected"),
    [
        ("LogisticRegression", "diabetes", "is a classifier but dataset diabetes is a regression dataset"),
        ("Ridge", "iris", "is a regressor but dataset iris is a classification dataset"),
    ],
)
def test_task_mismatch_is_refused(estimator, dataset, expected):
    spec = training_request.with_overrides(BASE, {"estimator": estimator, "dataset": dataset}, csv_body=False)
    with pytest.raises(TrainingInputError, match=expected):
        training.train(datasets.bundled(dataset), spec)


def test_split_that_leaves_a_class_untrained_is_refused():
    body = b"x,target\n" + b"".join(f"{i},{'a' if i < 9 else 'b'}\n".encode() for i in range(10))
    # Seed 0 puts the single 'b' row in the test half (a single-member class cannot be stratified).
    spec = training_request.with_overrides(BASE, {"testSize": 0.5, "randomState": 0}, csv_body=True)
    with pytest.raises(TrainingInputError, match="no training rows left for class 'b'"):
        training.train(datasets.from_csv(body, "classification"), spec)


# -- ONNX export: every allow-listed estimator must convert and agree with scikit-learn ----------------------


@pytest.mark.parametrize("name", sorted(estimators.ESTIMATORS))
def test_every_allow_listed_estimator_converts_faithfully(name):
    dataset = "iris" if name in estimators.CLASSIFIERS else "diabetes"
    params = {"max_iter": 2000} if name.startswith("MLP") else {}
    spec = training_request.TrainingSpec(dataset, name, params, 0.2, 42)
    outcome = training_job.run(spec)
    assert outcome.metrics["onnxAgreement"] >= onnx_export.MIN_AGREEMENT

    model = onnx.load_from_string(outcome.onnx_model)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["mlfunctions.task"] == outcome.metadata["task"]
    assert props["mlfunctions.features"] == str(outcome.metadata["features"])
    session = onnxruntime.InferenceSession(outcome.onnx_model, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    if dataset == "iris":
        assert json.loads(props["mlfunctions.classes"]) == ["setosa", "versicolor", "virginica"]
        assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
        assert props["mlfunctions.probabilities"] == ("false" if name == "SVC" else "true")
    else:
        assert "mlfunctions.classes" not in props


def test_store_metadata_carries_what_the_issue_asks_for():
    outcome = training_job.run(BASE)
    meta = outcome.metadata
    assert set(meta["metrics"]) == {"accuracy", "f1", "onnxAgreement"}
    assert meta["params"] == {"max_iter": 500} and meta["dataset"] == "iris"
    assert meta["estimator"] == "LogisticRegression" and meta["task"] == "classification"
    assert meta["classes"] == ["setosa", "versicolor", "virginica"] and meta["features"] == 4
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "python"} <= set(meta["framework"])
    json.dumps(meta)  # the store receives it as JSON


def test_conversion_that_disagrees_is_never_uploaded():
    with pytest.raises(onnx_export.ConversionError, match=r"agrees with scikit-learn on only 50\.0%"):
        onnx_export.check_agreement(0.5, "Whatever")
