"""Fit an estimator on a held-out split and measure it: accuracy and F1 for classifiers, R² and MAE for
regressors. Pure computation: data and a spec in, a fitted estimator and metrics out."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import estimators
from datasets import Dataset
from training_errors import TrainingInputError
from training_request import TrainingSpec


@dataclass(frozen=True)
class TrainedModel:
    estimator: Any
    metrics: dict[str, float]
    x_test: np.ndarray
    train_rows: int
    test_rows: int
    seconds: float
    warnings: list[str]


def train(dataset: Dataset, spec: TrainingSpec) -> TrainedModel:
    task = estimators.task_of(spec.estimator)
    if task != dataset.task:
        raise TrainingInputError(
            f"{spec.estimator} is a {'classifier' if task == 'classification' else 'regressor'} but dataset "
            f"{dataset.name} is a {dataset.task} dataset; pick a "
            f"{'regressor' if dataset.task == 'regression' else 'classifier'}"
        )
    estimator = estimators.build(spec.estimator, spec.params, spec.random_state)
    x_train, x_test, y_train, y_test = _split(dataset, spec)

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.fit(x_train, y_train)
        except (ValueError, TypeError) as error:
            # scikit-learn's parameter validation (InvalidParameterError) and data checks land here: both are
            # about what the caller sent, and scikit-learn's message names the parameter and what it accepts.
            raise TrainingInputError(f"{spec.estimator} could not be trained: {error}") from None
    seconds = time.perf_counter() - started

    predicted = estimator.predict(x_test)
    if task == "classification":
        metrics = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1": float(f1_score(y_test, predicted, average="macro", zero_division=0)),
        }
    else:
        metrics = {
            "r2": float(r2_score(y_test, predicted)),
            "mae": float(mean_absolute_error(y_test, predicted)),
            "rmse": float(np.sqrt(mean_squared_error(y_test, predicted))),
        }
    return TrainedModel(
        estimator=estimator,
        metrics=metrics,
        x_test=x_test,
        train_rows=len(x_train),
        test_rows=len(x_test),
        seconds=seconds,
        warnings=sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    )


def _split(dataset: Dataset, spec: TrainingSpec) -> list[np.ndarray]:
    rows = len(dataset.x)
    test_rows = int(np.ceil(rows * spec.test_size))
    if test_rows < 1 or rows - test_rows < 1:
        raise TrainingInputError(
            f"testSize {spec.test_size} leaves no rows to {'test' if test_rows < 1 else 'train'} on "
            f"with {rows} rows; use a testSize between {1 / rows:.3f} and {1 - 1 / rows:.3f}"
        )
    stratify = None
    if dataset.task == "classification":
        counts = np.bincount(dataset.y)
        if np.count_nonzero(counts) < 2:
            raise TrainingInputError("the data has a single class; a classifier needs at least two")
        # Stratify when every class can be on both sides, so small or unbalanced sets are still measured
        # fairly.
        if counts[counts > 0].min() >= 2 and test_rows >= np.count_nonzero(counts):
            stratify = dataset.y
    parts = train_test_split(
        dataset.x, dataset.y, test_size=spec.test_size, random_state=spec.random_state, stratify=stratify
    )
    if dataset.task == "classification":
        # Every class must be learned, or the model's probability columns would not line up with the class
        # names.
        missing = sorted(set(range(len(dataset.classes or []))) - set(np.unique(parts[2]).tolist()))
        if missing:
            names = ", ".join(repr(dataset.classes[i]) for i in missing)
            raise TrainingInputError(
                f"no training rows left for class {names} after the split; "
                "send more rows of it or a smaller testSize"
            )
    return parts
