"""Artifacts for iris-server tests: skops files and the pickles the store must refuse.

ONNX artifacts come from mlfunctions_harness.model_store.onnx_model.
"""

from __future__ import annotations

import io
import pickle

from mlfunctions_harness.model_store import onnx_model

__all__ = [
    "joblib_compressed",
    "onnx_model",
    "pickled_estimator",
    "skops_model",
    "skops_with_untrusted_function",
]


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
