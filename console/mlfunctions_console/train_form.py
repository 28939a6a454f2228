"""The train form: exactly what an MLFunction's spec lets a caller change, and the request body it becomes.
Pure.

`spec.training.allowOverrides` names what one call may change (the train function refuses anything else, 403):
the estimator (from the CRD's allow-list, fitted to the dataset: regressors for diabetes, classifiers
otherwise), the params named in `paramBounds` (each within its bounds: a number between minimum and maximum,
or one of `values`), testSize, randomState, the dataset. Empty or omitted: the call trains what the spec says,
so the form is a button. The train function checks the values again and names what is wrong."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

# The CRD's allow-list (tests/console checks it against crds/).
CLASSIFIERS = (
    "LogisticRegression",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
    "DecisionTreeClassifier",
    "KNeighborsClassifier",
    "SVC",
    "GaussianNB",
    "MLPClassifier",
)
REGRESSORS = (
    "LinearRegression",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "RandomForestRegressor",
    "ExtraTreesRegressor",
    "GradientBoostingRegressor",
    "DecisionTreeRegressor",
    "KNeighborsRegressor",
    "SVR",
    "MLPRegressor",
)
CLASSIFICATION_DATASETS = ("iris", "wine", "breast_cancer", "digits")
REGRESSION_DATASETS = ("diabetes",)
_INTEGER = re.compile(r"^[+-]?\d+$")


class FormError(ValueError):
    pass


@dataclass(frozen=True)
class ParamField:
    name: str
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()  # a choice instead of a number
    value: str = ""  # what the field shows: the spec's value, or what was typed


@dataclass(frozen=True)
class TrainForm:
    dataset: str
    estimator: str
    params: dict[str, Any]  # the spec's
    test_size: float
    allow: frozenset[str] = frozenset()
    estimators: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    param_fields: list[ParamField] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # what was typed, shown again after an error

    @property
    def fixed(self) -> bool:
        """Nothing may be changed: the button trains the spec as it is."""
        return not (self.allow & {"estimator", "params", "testSize", "randomState", "dataset"})


def _estimators_for(dataset: str) -> tuple[str, ...]:
    return REGRESSORS if dataset in REGRESSION_DATASETS else CLASSIFIERS


def for_spec(training: dict[str, Any], values: dict[str, str] | None = None) -> TrainForm:
    values = values or {}
    dataset = training.get("dataset", "iris")
    allow = frozenset(training.get("allowOverrides") or ())
    params = training.get("params") or {}
    fields = []
    if "params" in allow:
        for name, bound in sorted((training.get("paramBounds") or {}).items()):
            shown = values.get(f"param.{name}", "" if params.get(name) is None else str(params[name]))
            fields.append(
                ParamField(
                    name, bound.get("minimum"), bound.get("maximum"), tuple(bound.get("values") or ()), shown
                )
            )
    kind = REGRESSION_DATASETS if dataset in REGRESSION_DATASETS else CLASSIFICATION_DATASETS
    return TrainForm(
        dataset=dataset,
        estimator=training.get("estimator", ""),
        params=params,
        test_size=training.get("testSize", 0.2),
        allow=allow,
        estimators=_estimators_for(dataset) if "estimator" in allow else (),
        datasets=kind if "dataset" in allow else (),
        param_fields=fields,
        values=values,
    )


def request_body(form: TrainForm, values: dict[str, str]) -> bytes:
    """The train function's JSON body: only what the spec allows; FormError names the field that is wrong."""
    body: dict[str, Any] = {}
    dataset = form.dataset
    if "dataset" in form.allow and values.get("dataset"):
        if values["dataset"] not in form.datasets:
            raise FormError(f"dataset: {values['dataset']!r} is not one of {', '.join(form.datasets)}")
        dataset = body["dataset"] = values["dataset"]
    if "estimator" in form.allow and values.get("estimator"):
        allowed = _estimators_for(dataset)
        if values["estimator"] not in allowed:
            kind = "regressor" if allowed == REGRESSORS else "classifier"
            raise FormError(
                f"estimator: {values['estimator']!r} is not allowed for dataset {dataset}; choose a "
                f"{kind} from the list"
            )
        body["estimator"] = values["estimator"]
    if "params" in form.allow:
        params = {
            f.name: _param(f, values.get(f"param.{f.name}", "").strip())
            for f in form.param_fields
            if values.get(f"param.{f.name}", "").strip()
        }
        if params:
            body["params"] = params
    if "testSize" in form.allow and values.get("testSize", "").strip():
        fraction = _number("test size", values["testSize"])
        if not 0 < fraction < 1:
            raise FormError("test size: must be strictly between 0 and 1")
        body["testSize"] = fraction
    if "randomState" in form.allow and values.get("randomState", "").strip():
        raw = values["randomState"].strip()
        if not _INTEGER.match(raw) or int(raw) < 0:
            raise FormError(f"random seed: {raw!r} is not a whole number of 0 or more")
        body["randomState"] = int(raw)
    return json.dumps(body).encode()


def _number(label: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise FormError(f"{label}: {raw.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise FormError(f"{label}: must be a finite number")
    return value


def _param(bound: ParamField, raw: str) -> int | float | str:
    if bound.values:
        if raw not in bound.values:
            raise FormError(f"{bound.name}: choose one of {', '.join(bound.values)}")
        return raw
    value: int | float = (
        int(raw) if _INTEGER.match(raw) else _number(bound.name, raw)
    )  # n_estimators wants an int
    if (bound.minimum is not None and value < bound.minimum) or (
        bound.maximum is not None and value > bound.maximum
    ):
        raise FormError(f"{bound.name}: must be between {_show(bound.minimum)} and {_show(bound.maximum)}")
    return value


def _show(limit: float | None) -> str:
    if limit is None:
        return "any"
    return str(int(limit)) if float(limit).is_integer() else str(limit)
