"""Training data: scikit-learn's bundled datasets, or a CSV table sent in the request body.

Targets are encoded as class indices 0..k-1 with the class names kept alongside, so the ONNX model's integer
labels map back to names ("setosa") in the predict function without anything else."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from training_errors import TrainingInputError

# The home of the list of bundled datasets and their tasks. The operator's API carries a copy for its CRD (DATASETS
# in operator/mlfunctions_operator/api/mlfunction.py), tied to this one by
# tests/contracts/test_training_lists_contract.py.
BUNDLED: dict[str, str] = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}
TARGET_COLUMN = "target"
MIN_ROWS = 5


@dataclass(frozen=True)
class Dataset:
    name: str  # a bundled name, or "csv:sha256:<hex>" for a table sent in the request
    x: np.ndarray  # float64, rows x features
    y: np.ndarray  # class indices (classification) or float targets (regression)
    task: str  # "classification" | "regression"
    classes: list[Any] | None  # class names, index-aligned with y's values
    feature_names: list[str]
    image: dict[str, Any] | None = None  # {"width", "height", "maxValue"} for image data (digits)


def check_name(name: object) -> str:
    if not isinstance(name, str) or name not in BUNDLED:
        raise TrainingInputError(
            f"unknown dataset {name!r}; expected one of: {', '.join(BUNDLED)} (or a CSV body)"
        )
    return name


def bundled(name: str) -> Dataset:
    from sklearn import datasets as sk_datasets

    data = getattr(sk_datasets, f"load_{check_name(name)}")()
    x = np.asarray(data.data, dtype=np.float64)
    task = BUNDLED[name]
    image = None
    if name == "digits":
        height, width = data.images.shape[1:]
        image = {"width": int(width), "height": int(height), "maxValue": float(x.max())}
    if task == "regression":
        return Dataset(
            name, x, np.asarray(data.target, dtype=np.float64), task, None, list(data.feature_names)
        )
    classes = [_plain(c) for c in data.target_names]
    return Dataset(
        name, x, np.asarray(data.target, dtype=np.int64), task, classes, list(data.feature_names), image
    )


def from_csv(body: bytes, task: str) -> Dataset:
    """A table with a header row and a `target` column; every other column is a numeric feature."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TrainingInputError(f"the CSV body is not UTF-8 text ({error})") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        raise TrainingInputError(
            f"the CSV body is empty; expected a header row with a '{TARGET_COLUMN}' column"
        )
    header = [name.strip() for name in rows[0]]
    if TARGET_COLUMN not in header:
        raise TrainingInputError(
            f"the CSV has no '{TARGET_COLUMN}' column; expected a header row naming the features and "
            f"'{TARGET_COLUMN}', got: {', '.join(header)}"
        )
    if len(header) < 2:
        raise TrainingInputError("the CSV has no feature columns besides 'target'")
    target_at = header.index(TARGET_COLUMN)
    feature_names = [name for i, name in enumerate(header) if i != target_at]
    if len(rows) - 1 < MIN_ROWS:
        raise TrainingInputError(f"the CSV has {len(rows) - 1} data rows; at least {MIN_ROWS} are needed")

    features: list[list[float]] = []
    targets: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise TrainingInputError(f"CSV line {line} has {len(row)} fields; the header has {len(header)}")
        values = []
        for i, cell in enumerate(row):
            if i == target_at:
                targets.append(cell.strip())
                continue
            values.append(_number(cell, line, header[i]))
        features.append(values)

    x = np.asarray(features, dtype=np.float64)
    name = "csv:sha256:" + hashlib.sha256(body).hexdigest()
    if task == "regression":
        y = np.asarray([_number(t, line, TARGET_COLUMN) for line, t in enumerate(targets, start=2)])
        return Dataset(name, x, y, task, None, feature_names)
    if any(not t for t in targets):
        line = targets.index("") + 2
        raise TrainingInputError(
            f"CSV line {line}: the '{TARGET_COLUMN}' value is empty; expected a class label"
        )
    labels = sorted(set(targets), key=_label_sort_key)
    index = {label: i for i, label in enumerate(labels)}
    y = np.asarray([index[t] for t in targets], dtype=np.int64)
    return Dataset(name, x, y, task, [_label_value(label) for label in labels], feature_names)


def _number(cell: str, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise TrainingInputError(
            f"CSV line {line}, column '{column}': {cell.strip()!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise TrainingInputError(
            f"CSV line {line}, column '{column}': {cell.strip()!r} is not a finite number"
        )
    return value


def _label_value(label: str) -> Any:
    """Integer-looking labels stay integers (so predictions answer 0, not "0"); others stay strings."""
    try:
        return int(label)
    except ValueError:
        return label


def _label_sort_key(label: str) -> tuple[int, Any]:
    value = _label_value(label)
    return (0, value) if isinstance(value, int) else (1, value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
