"""One training run end to end, short of the upload: data → fitted model → checked ONNX bytes + store
metadata."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib import metadata as package_metadata
from typing import Any

import datasets
import estimators
import onnx_export
import training
from training_request import TrainingSpec

FRAMEWORK_PACKAGES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


@dataclass(frozen=True)
class TrainingOutcome:
    onnx_model: bytes
    metrics: dict[str, float]
    metadata: dict[str, Any]  # what the model store keeps next to the artifact
    warnings: list[str]


def run(spec: TrainingSpec, csv_body: bytes | None = None) -> TrainingOutcome:
    started = time.perf_counter()
    if csv_body is not None:
        dataset = datasets.from_csv(csv_body, estimators.task_of(spec.estimator))
    else:
        dataset = datasets.bundled(spec.dataset)
    trained = training.train(dataset, spec)
    model = onnx_export.to_onnx(trained.estimator, dataset, spec.estimator)
    agreement = onnx_export.agreement(model, trained.estimator, trained.x_test, dataset.task)
    onnx_export.check_agreement(agreement, spec.estimator)
    metrics = {**trained.metrics, "onnxAgreement": agreement}

    metadata: dict[str, Any] = {
        "metrics": metrics,
        "params": spec.params,
        "dataset": dataset.name,
        "estimator": spec.estimator,
        "task": dataset.task,
        "features": int(dataset.x.shape[1]),
        "featureNames": dataset.feature_names,
        "testSize": spec.test_size,
        "randomState": spec.random_state,
        "trainRows": trained.train_rows,
        "testRows": trained.test_rows,
        "fitSeconds": round(trained.seconds, 4),
        "trainingSeconds": round(time.perf_counter() - started, 4),
        "framework": {"python": platform.python_version(), **_versions()},
        "onnx": {"input": onnx_export.INPUT_NAME, "opset": onnx_export.TARGET_OPSET},
    }
    if dataset.classes is not None:
        metadata["classes"] = dataset.classes
    if dataset.image:
        metadata["image"] = dataset.image
    return TrainingOutcome(model, metrics, metadata, trained.warnings)


def _versions() -> dict[str, str]:
    return {name: package_metadata.version(name) for name in FRAMEWORK_PACKAGES}
