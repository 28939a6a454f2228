"""The allow-list of scikit-learn estimators the training function builds.

Only estimators that skl2onnx converts faithfully are listed (checked by
tests/functions/test_train_units.py), so every trained model can be served by onnxruntime alone. Modules
are imported on use: importing all of scikit-learn's estimators up front would add about a second to every
cold start of the training function."""

from __future__ import annotations

import importlib
from typing import Any

from training_errors import TrainingInputError

# The home of the allow-list. The operator's API carries a copy for its CRD (CLASSIFIERS and REGRESSORS in
# operator/mlfunctions_operator/api/mlfunction.py), tied to this one by tests/contracts/test_training_lists_contract.py.
CLASSIFIERS: dict[str, str] = {
    "LogisticRegression": "sklearn.linear_model",
    "RandomForestClassifier": "sklearn.ensemble",
    "ExtraTreesClassifier": "sklearn.ensemble",
    "GradientBoostingClassifier": "sklearn.ensemble",
    "DecisionTreeClassifier": "sklearn.tree",
    "KNeighborsClassifier": "sklearn.neighbors",
    "SVC": "sklearn.svm",
    "GaussianNB": "sklearn.naive_bayes",
    "MLPClassifier": "sklearn.neural_network",
}

REGRESSORS: dict[str, str] = {
    "LinearRegression": "sklearn.linear_model",
    "Ridge": "sklearn.linear_model",
    "Lasso": "sklearn.linear_model",
    "ElasticNet": "sklearn.linear_model",
    "RandomForestRegressor": "sklearn.ensemble",
    "ExtraTreesRegressor": "sklearn.ensemble",
    "GradientBoostingRegressor": "sklearn.ensemble",
    "DecisionTreeRegressor": "sklearn.tree",
    "KNeighborsRegressor": "sklearn.neighbors",
    "SVR": "sklearn.svm",
    "MLPRegressor": "sklearn.neural_network",
}

ESTIMATORS: dict[str, str] = {**CLASSIFIERS, **REGRESSORS}


def task_of(name: str) -> str:
    check_name(name)
    return "classification" if name in CLASSIFIERS else "regression"


def check_name(name: object) -> str:
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise TrainingInputError(
            f"unknown estimator {name!r}; expected one of: classifiers {', '.join(CLASSIFIERS)}; "
            f"regressors {', '.join(REGRESSORS)}"
        )
    return name


def build(name: str, params: dict[str, Any], random_state: int) -> Any:
    """A fresh estimator with `params`. Unknown parameter names are refused here, naming them; bad values are
    refused by scikit-learn's own validation when fitting."""
    cls = getattr(importlib.import_module(ESTIMATORS[check_name(name)]), name)
    estimator = cls()
    known = estimator.get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TrainingInputError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {name}; "
            f"valid parameters: {', '.join(sorted(known))}"
        )
    # Reproducible by default: the same request trains the same model unless the caller picks a seed.
    seeded = (
        {"random_state": random_state} if "random_state" in known and "random_state" not in params else {}
    )
    return estimator.set_params(**seeded, **params)
