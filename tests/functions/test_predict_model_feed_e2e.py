"""A predict function follows its model through the store's change feed: a retrained version is served within
seconds although its refresh interval (the fallback) is ten minutes, and without a restart."""

from __future__ import annotations

import time

import pytest
from function_harness import PREDICT_DIR, TRAIN_DIR, function_env, served_version, train_model
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server

SERVED_WITHIN_SECONDS = 3.0  # the feed's wake-up, one download and building the ONNX session


def test_a_retrained_version_is_served_at_once_through_the_feed(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    reader = model_store.token(["iris"], ["read"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    assert train_model(train)["model"]["version"] == 1
    predict = run_function(PREDICT_DIR, function_env(model_store, reader.token, MODEL_REFRESH_SECONDS="600"))
    assert served_version(predict) == 1
    pid = predict.process.pid

    for version, estimator in ((2, "RandomForestClassifier"), (3, "KNeighborsClassifier")):
        assert train_model(train, estimator=estimator)["model"]["version"] == version
        trained = time.monotonic()
        wait_for(lambda v=version: served_version(predict) == v, SERVED_WITHIN_SECONDS,
                 f"the predict function to serve version {version}", interval=0.05)
        print(f"version {version} served {time.monotonic() - trained:.3f}s after training returned")
    assert predict.process.pid == pid and predict.process.poll() is None
