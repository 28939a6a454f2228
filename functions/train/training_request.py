"""What to train: the function's configuration (environment, set by the operator from the MLFunction) with the
request's overrides applied. Pure: no scikit-learn here, so it is cheap to import and to test."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any
from collections.abc import Mapping

import datasets
import estimators
from training_errors import TrainingInputError

DEFAULT_TEST_SIZE = 0.2
DEFAULT_RANDOM_STATE = 42
OVERRIDE_FIELDS = ("dataset", "estimator", "params", "testSize", "randomState")


@dataclass(frozen=True)
class TrainingSpec:
    dataset: str  # a bundled dataset name; "csv" when the request body carries the table
    estimator: str
    params: dict[str, Any]
    test_size: float
    random_state: int


def from_environment(env: Mapping[str, str]) -> TrainingSpec:
    """The defaults from TRAIN_DATASET, TRAIN_ESTIMATOR, TRAIN_PARAMS (a JSON object), TRAIN_TEST_SIZE and
    TRAIN_RANDOM_STATE. Raises TrainingInputError naming the variable; parameter names are checked when
    training (they need scikit-learn, which this module does not import)."""
    test_size = _float(env.get("TRAIN_TEST_SIZE") or DEFAULT_TEST_SIZE, "TRAIN_TEST_SIZE")
    random_state = _int(env.get("TRAIN_RANDOM_STATE") or DEFAULT_RANDOM_STATE)
    return TrainingSpec(
        dataset=_named("TRAIN_DATASET", datasets.check_name, env.get("TRAIN_DATASET") or "iris"),
        estimator=_named(
            "TRAIN_ESTIMATOR", estimators.check_name, env.get("TRAIN_ESTIMATOR") or "LogisticRegression"
        ),
        params=_named("TRAIN_PARAMS", _params, _json(env.get("TRAIN_PARAMS") or "{}", "TRAIN_PARAMS")),
        test_size=_named("TRAIN_TEST_SIZE", _test_size, test_size),
        random_state=_named("TRAIN_RANDOM_STATE", _random_state, random_state),
    )


def with_overrides(base: TrainingSpec, overrides: Mapping[str, Any], *, csv_body: bool) -> TrainingSpec:
    """`base` changed by the request's fields (JSON body, or query parameters with a CSV body).

    The configured params belong to the configured estimator: a request that names another estimator and no
    params trains that estimator with its defaults rather than with parameters meant for a different one."""
    unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
    if unknown:
        raise TrainingInputError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"expected any of: {', '.join(OVERRIDE_FIELDS)}"
        )
    spec = base
    if "dataset" in overrides:
        if csv_body:
            raise TrainingInputError("'dataset' cannot be combined with a CSV body: the body is the dataset")
        spec = replace(spec, dataset=datasets.check_name(overrides["dataset"]))
    if "estimator" in overrides:
        name = estimators.check_name(overrides["estimator"])
        if name != base.estimator:
            spec = replace(spec, estimator=name, params={})
    if "params" in overrides:
        spec = replace(spec, params=_params(overrides["params"]))
    if "testSize" in overrides:
        spec = replace(spec, test_size=_test_size(overrides["testSize"]))
    if "randomState" in overrides:
        spec = replace(spec, random_state=_random_state(overrides["randomState"]))
    if csv_body:
        spec = replace(spec, dataset="csv")
    return spec


def overrides_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Query parameters for a CSV request, where the body cannot carry options: params is JSON text."""
    overrides: dict[str, Any] = dict(query)
    if "params" in overrides:
        overrides["params"] = _json(overrides["params"], "the 'params' query parameter")
    if "testSize" in overrides:
        overrides["testSize"] = _float(overrides["testSize"], "testSize")
    if "randomState" in overrides:
        overrides["randomState"] = _int(overrides["randomState"])
    return overrides


def _named(variable: str, check, value: Any) -> Any:
    try:
        return check(value)
    except TrainingInputError as error:
        raise TrainingInputError(f"{variable}: {error}") from None


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TrainingInputError(
            f'{what} is not valid JSON ({error}); expected an object like {{"max_iter": 200}}'
        ) from None


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TrainingInputError(
            f"params must be a JSON object of estimator parameters, got {type(value).__name__}"
        )
    return dict(value)


def _float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TrainingInputError(f"{what} must be a number, got {value!r}") from None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TrainingInputError(f"randomState must be an integer, got {value!r}") from None


def _test_size(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value < 1
    ):
        raise TrainingInputError(f"testSize must be a number strictly between 0 and 1, got {value!r}")
    return float(value)


def _random_state(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise TrainingInputError(f"randomState must be an integer in [0, 2**32), got {value!r}")
    return value
