"""Artifacts for iris-server tests and the benchmark: real ONNX and skops files, and the pickles the store refuses."""

from __future__ import annotations

import io
import pickle

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def onnx_model(seed: int = 0, floats: int = 4) -> bytes:
    """A valid ONNX model Y = X + C, whose constant C (`floats` values drawn from `seed`) makes its bytes unique."""
    values = np.random.default_rng(seed).random(floats, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "C"], ["Y"])],
        f"sample-{seed}",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, floats])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, floats])],
        initializer=[numpy_helper.from_array(values, name="C")],
    )
    model = helper.make_model(graph, producer_name="iris-tests", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_model_of_size(size_bytes: int, seed: int = 0) -> bytes:
    return onnx_model(seed=seed, floats=max(1, size_bytes // 4))


def skops_model() -> bytes:
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return skops.io.dumps(LogisticRegression(max_iter=300).fit(features, labels))


def skops_with_untrusted_function() -> bytes:
    """A skops file that would hand os.system to a FunctionTransformer: the store must refuse it."""
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    return skops.io.dumps(FunctionTransformer(func=os.system))


def pickled_estimator() -> bytes:
    from sklearn.linear_model import LinearRegression

    return pickle.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), protocol=pickle.HIGHEST_PROTOCOL)


def joblib_compressed() -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"weights": [1, 2, 3]}, buffer, compress=3)
    return buffer.getvalue()
