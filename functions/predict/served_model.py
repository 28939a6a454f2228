"""One ONNX model ready to answer: an onnxruntime session plus what the model's metadata says about it.

Loading ONNX runs no code from the file (unlike a pickle), and onnxruntime alone serves it: this module, and
the whole predict function, never imports scikit-learn. Instances are immutable once built, which is what lets
requests read the current model without a lock while a refresh swaps in a new one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime

from onnx_external_data import MalformedModel, external_data_reference

METADATA_PREFIX = "mlfunctions."
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


class UnservableModel(ValueError):
    """The artifact is not an ONNX model this function can serve (the message says why)."""


@dataclass(frozen=True)
class Prediction:
    predictions: list[Any]  # class names for classifiers, numbers for regressors
    probabilities: np.ndarray | None  # rows x classes, when asked and available


class ServedModel:
    def __init__(
        self, onnx_model: bytes, name: str, version: int, store_metadata: dict[str, Any] | None = None
    ):
        self.name = name
        self.version = version
        store_metadata = store_metadata or {}
        options = onnxruntime.SessionOptions()
        # One request is a few microseconds of arithmetic: thread hand-offs would cost more than they save,
        # and
        # replicas, not threads, are how a function scales.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            external = external_data_reference(onnx_model)
        except MalformedModel as error:
            raise UnservableModel(f"model {name} v{version} is not a valid ONNX model: {error}") from None
        if external is not None:
            # Checked before onnxruntime sees the file: it would resolve the path against its working directory.
            raise UnservableModel(
                f"model {name} v{version} keeps tensor data outside the file, at {external}: this function "
                "serves only self-contained ONNX files and never reads the files a model points at "
                "(save the model with its weights inside, e.g. onnx.save(model, path, save_as_external_data=False))"
            )
        try:
            self._session = onnxruntime.InferenceSession(
                onnx_model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for every kind of bad file
            raise UnservableModel(f"model {name} v{version} is not a valid ONNX model: {error}") from None

        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 2 or inputs[0].type not in _INPUT_TYPES:
            raise UnservableModel(
                f"model {name} v{version} must take one 2-D float tensor (rows x features); it takes "
                + ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            )
        self.input_name = inputs[0].name
        self.input_dtype = _INPUT_TYPES[inputs[0].type]
        info = {**store_metadata, **_declared_metadata(self._session, f"model {name} v{version}")}
        declared = inputs[0].shape[1]
        self.features: int | None = declared if isinstance(declared, int) else _int(info.get("features"))
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.task: str = info.get("task") or ("classification" if len(self._outputs) >= 2 else "regression")
        self.classes: list[Any] | None = info.get("classes") if self.task == "classification" else None
        self.image: dict[str, Any] | None = info.get("image")
        self.has_probabilities = (
            self.task == "classification"
            and len(self._outputs) >= 2
            and str(info.get("probabilities", "true")).lower() != "false"
        )
        if self.task == "classification" and self.has_probabilities and self.classes is not None:
            columns = self._session.get_outputs()[1].shape[-1]
            if isinstance(columns, int) and columns != len(self.classes):
                raise UnservableModel(
                    f"model {name} v{version} has {columns} probability columns "
                    f"but {len(self.classes)} class names"
                )

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    def predict(self, rows: np.ndarray, probabilities: bool = False) -> Prediction:
        """`rows` is a C-contiguous 2-D array of self.input_dtype (the protocol layer builds it that way)."""
        outputs = self._session.run(
            self._outputs[:2] if probabilities else self._outputs[:1], {self.input_name: rows}
        )
        if self.task != "classification":
            # float32 carries about 7 significant digits; printing more would be noise, not precision.
            return Prediction([float(f"{v:.7g}") for v in outputs[0].ravel().tolist()], None)
        labels = outputs[0].ravel().tolist()
        if self.classes is not None:
            classes = self.classes
            labels = [classes[label] for label in labels]
        return Prediction(labels, outputs[1] if probabilities else None)


def _declared_metadata(session: onnxruntime.InferenceSession, what: str) -> dict[str, Any]:
    """The model's own "mlfunctions." metadata_props (written by the train function); they win over the
    store's."""
    declared = {
        key[len(METADATA_PREFIX) :]: value
        for key, value in session.get_modelmeta().custom_metadata_map.items()
        if key.startswith(METADATA_PREFIX)
    }
    for key in ("classes", "image"):
        if key in declared:
            try:
                declared[key] = json.loads(declared[key])
            except json.JSONDecodeError as error:
                raise UnservableModel(
                    f"{what}: metadata {METADATA_PREFIX}{key} is not JSON ({error})"
                ) from None
    return declared


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
