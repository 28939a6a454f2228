"""A serving predict function while what is stored changes, end to end, each test with its own store: a new
version is picked up without a restart (a pinned function stays), swaps drop no request, and the store going
down and coming back is survived by a warm function and recovered from by a cold one."""

from __future__ import annotations

import threading

import pytest
import requests
from mlfunctions_harness.processes import wait_for

from function_harness import (
    IRIS_SAMPLES,
    PREDICT_DIR,
    SWAP_TIMEOUT_SECONDS,
    TRAIN_DIR,
    function_env,
    predict_rows,
    served_version,
    train_model,
    wait_for_version,
)

pytestmark = pytest.mark.server

NOT_MODIFIED = "iris_not_modified_total"  # the store's count of "anything newer?" answered 304
REFRESH_FAILED = "model refresh failed; still serving the loaded model"  # model_source.py's log line
REFRESHES = 3


def test_retrain_moves_predict_to_the_new_version_and_a_pinned_one_stays(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    reader = model_store.token(["iris"], ["read"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    assert train_model(train)["model"]["version"] == 1
    latest = run_function(PREDICT_DIR, function_env(model_store, reader.token, MODEL_REFRESH_SECONDS="0.3"))
    pinned = run_function(
        PREDICT_DIR, function_env(model_store, reader.token, MODEL_VERSION="1", MODEL_REFRESH_SECONDS="0.3")
    )
    assert served_version(latest) == 1 and served_version(pinned) == 1
    pid = latest.process.pid

    second = train_model(train, estimator="RandomForestClassifier", params={"n_estimators": 30})
    assert second["model"]["version"] == 2 and second["metrics"]["accuracy"] >= 0.9
    wait_for_version(latest, 2)
    assert latest.process.pid == pid and latest.process.poll() is None  # no restart
    for species, samples in IRIS_SAMPLES.items():
        assert predict_rows(latest, samples).json()["predictions"] == [species] * 3
    # Several refresh intervals, counted: the store's "not modified" answers to `latest` (the pinned function,
    # once loaded, asks nothing). Had the pinned one followed the newest, it would have moved within one.
    checks = model_store.metric(NOT_MODIFIED)
    wait_for(
        lambda: model_store.metric(NOT_MODIFIED) >= checks + REFRESHES,
        SWAP_TIMEOUT_SECONDS,
        f"{REFRESHES} more refreshes of the newest version",
    )
    assert served_version(pinned) == 1


def test_swapping_models_drops_no_request(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    train_model(train)
    predict = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    outcomes: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(
                    f"{predict.url}/", json={"instances": IRIS_SAMPLES["virginica"]}, timeout=30
                )
                outcomes.append((response.status_code, response.json().get("model", {}).get("version")))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for estimator in ("RandomForestClassifier", "GradientBoostingClassifier", "KNeighborsClassifier"):
            train_model(train, estimator=estimator)
        wait_for(lambda: outcomes and outcomes[-1][1] == 4, SWAP_TIMEOUT_SECONDS, "answers from version 4")
    finally:
        stop.set()
        thread.join()
    assert {status for status, _ in outcomes} == {200}
    versions = [version for _, version in outcomes]
    assert versions == sorted(versions) and versions[0] == 1 and versions[-1] == 4  # never goes back


def test_store_down_keeps_the_loaded_model_and_a_cold_function_recovers(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    train_model(train)
    warm = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    assert served_version(warm) == 1

    failed_before = warm.log_count(REFRESH_FAILED)
    model_store.stop()
    # The warm function has seen the store gone: refreshes failed, counted in its log.
    wait_for(
        lambda: warm.log_count(REFRESH_FAILED) >= failed_before + REFRESHES,
        SWAP_TIMEOUT_SECONDS,
        f"{REFRESHES} failed refreshes in the warm function's log",
    )
    assert predict_rows(warm, IRIS_SAMPLES["setosa"]).json()["predictions"] == ["setosa"] * 3

    cold = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    response = predict_rows(cold, IRIS_SAMPLES["setosa"])
    assert response.status_code == 503, response.text
    assert "unavailable" in response.json()["error"] and response.headers["Retry-After"] == "1"
    health = requests.get(f"{cold.url}/_/health")
    assert health.status_code == 200 and "unavailable" in health.json()["error"]  # up, and saying why
    assert requests.get(f"{cold.url}/v2/health/ready").status_code == 503
    training_down = requests.post(f"{train.url}/", timeout=120)
    assert training_down.status_code == 503 and "unavailable" in training_down.json()["error"]

    model_store.start()  # same port, same data

    def recovered() -> requests.Response | None:
        response = predict_rows(cold, IRIS_SAMPLES["setosa"])
        assert response.status_code in (200, 503), response.text
        return response if response.status_code == 200 else None

    response = wait_for(recovered, SWAP_TIMEOUT_SECONDS, "the cold function to load the model", interval=0.1)
    assert response.json()["predictions"] == ["setosa"] * 3
    assert requests.get(f"{cold.url}/v2/health/ready").status_code == 200
