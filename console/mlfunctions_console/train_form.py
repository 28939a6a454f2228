"""The train form: the estimators and params an MLFunction's spec allows, and the request body they become. Pure.

The spec fixes the dataset (a train MLFunction writes one model, from one dataset); the estimator may be any of
the allow-list that fits the dataset (the CRD's rule: regressors for diabetes, classifiers otherwise), with its
params as a JSON object. The train function checks the params' names and values and says what is wrong."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# The CRD's allow-list (tests/console checks it against crds/).
CLASSIFIERS = ("LogisticRegression", "RandomForestClassifier", "ExtraTreesClassifier", "GradientBoostingClassifier",
               "DecisionTreeClassifier", "KNeighborsClassifier", "SVC", "GaussianNB", "MLPClassifier")
REGRESSORS = ("LinearRegression", "Ridge", "Lasso", "ElasticNet", "RandomForestRegressor", "ExtraTreesRegressor",
              "GradientBoostingRegressor", "DecisionTreeRegressor", "KNeighborsRegressor", "SVR", "MLPRegressor")
REGRESSION_DATASETS = ("diabetes",)
MAX_PARAMS_BYTES = 4096


class FormError(ValueError):
    pass


@dataclass(frozen=True)
class TrainForm:
    dataset: str
    estimators: tuple[str, ...]
    estimator: str
    params: str  # JSON text
    test_size: str


def for_spec(training: dict[str, Any], values: dict[str, str] | None = None) -> TrainForm:
    dataset = training.get("dataset", "iris")
    allowed = REGRESSORS if dataset in REGRESSION_DATASETS else CLASSIFIERS
    values = values or {}
    return TrainForm(
        dataset=dataset, estimators=allowed,
        estimator=values.get("estimator") or training.get("estimator") or allowed[0],
        params=values.get("params", json.dumps(training.get("params") or {}, indent=None)),
        test_size=values.get("testSize", str(training.get("testSize", 0.2))))


def request_body(form: TrainForm, values: dict[str, str]) -> bytes:
    """The train function's JSON body; FormError names the field that is wrong."""
    estimator = values.get("estimator", "")
    if estimator not in form.estimators:
        kind = "regressor" if form.estimators == REGRESSORS else "classifier"
        raise FormError(f"estimator: {estimator!r} is not allowed for dataset {form.dataset}; choose a {kind} "
                        f"from the list")
    raw = values.get("params", "").strip() or "{}"
    if len(raw) > MAX_PARAMS_BYTES:
        raise FormError(f"params: at most {MAX_PARAMS_BYTES} bytes")
    try:
        params = json.loads(raw)
    except json.JSONDecodeError as error:
        raise FormError(f"params: not JSON ({error.msg}); expected an object like {{\"max_iter\": 200}}") from None
    if not isinstance(params, dict):
        raise FormError("params: expected a JSON object like {\"max_iter\": 200}")
    body: dict[str, Any] = {"estimator": estimator, "params": params}
    test_size = values.get("testSize", "").strip()
    if test_size:
        try:
            fraction = float(test_size)
        except ValueError:
            raise FormError(f"test size: {test_size!r} is not a number") from None
        if not (math.isfinite(fraction) and 0 < fraction < 1):
            raise FormError("test size: must be strictly between 0 and 1")
        body["testSize"] = fraction
    return json.dumps(body).encode()
