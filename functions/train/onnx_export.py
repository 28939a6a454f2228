"""Turn a fitted estimator into a self-describing ONNX model, and check it predicts what scikit-learn
predicts.

The predict function needs nothing but the ONNX bytes: the task, class names, feature count and (for image
models) the image geometry travel in the model's metadata_props under the "mlfunctions." prefix."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnxruntime
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from datasets import Dataset
from training_errors import TrainingInputError

# Pinned rather than "newest": a model must load in every predict image still running, not only the newest
# one.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
INPUT_NAME = "input"
METADATA_PREFIX = "mlfunctions."
MIN_AGREEMENT = 0.98


class ConversionError(RuntimeError):
    """The converted model does not behave like the trained one: never upload it."""


def to_onnx(estimator: Any, dataset: Dataset, estimator_name: str) -> bytes:
    classification = dataset.task == "classification"
    try:
        model = convert_sklearn(
            estimator,
            initial_types=[(INPUT_NAME, FloatTensorType([None, dataset.x.shape[1]]))],
            # Plain tensors (label, probabilities) instead of a list of maps: several times faster to serve.
            options={id(estimator): {"zipmap": False}} if classification else None,
            target_opset=TARGET_OPSET,
        )
    except Exception as error:  # skl2onnx raises many types; all mean "these parameters cannot be served"
        raise TrainingInputError(
            f"{estimator_name} with these parameters cannot be converted to ONNX, so it could not be served: "
            f"{error}"
        ) from None
    properties: dict[str, Any] = {
        "task": dataset.task,
        "features": dataset.x.shape[1],
        "estimator": estimator_name,
        "dataset": dataset.name,
    }
    if classification:
        properties["classes"] = json.dumps(dataset.classes)
        # SVC without probability=True has no predict_proba: its second output holds decision scores.
        properties["probabilities"] = "true" if hasattr(estimator, "predict_proba") else "false"
    if dataset.image:
        properties["image"] = json.dumps(dataset.image)
    for key, value in properties.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, str(value)
    model.doc_string = f"{estimator_name} trained on {dataset.name} by the mlfunctions train function"
    return model.SerializeToString()


def agreement(onnx_model: bytes, estimator: Any, x: np.ndarray, task: str) -> float:
    """The share of rows on which onnxruntime and scikit-learn agree (labels equal, or values within 1e-3)."""
    session = onnxruntime.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    rows = x.astype(np.float32)
    served = session.run(None, {INPUT_NAME: rows})[0].ravel()
    expected = np.asarray(estimator.predict(rows)).ravel()
    if task == "classification":
        return float(np.mean(served == expected))
    return float(np.mean(np.isclose(served, expected, rtol=1e-3, atol=1e-3)))


def check_agreement(value: float, estimator_name: str) -> None:
    if value < MIN_AGREEMENT:
        raise ConversionError(
            f"the ONNX conversion of {estimator_name} agrees with scikit-learn on only {value:.1%} "
            "of the test rows "
            f"(at least {MIN_AGREEMENT:.0%} required); the model was not uploaded"
        )
