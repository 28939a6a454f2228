"""Each function's GET /_/metrics on its own port, over real sockets: of-watchdog's request metrics (probes and
scrapes not counted), the model version predict serves, model loads, trainings, and the cold start."""

from __future__ import annotations

import requests
from function_harness import PREDICT_DIR, TRAIN_DIR, function_env, predict_rows, train_model, wait_for_version
from mlfunctions_harness.processes import wait_for
from prometheus_client.parser import text_string_to_metric_families

SETOSA = [[5.1, 3.5, 1.4, 0.2]]


def samples(function) -> dict[str, float]:
    response = requests.get(f"{function.url}/_/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_train_counts_trainings_and_requests(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    before = samples(train)
    assert before['mlfunctions_function_info{model="iris",task="train"}'] == 1
    assert before["mlfunctions_cold_start_seconds"] > 0
    assert not [k for k in before if k.startswith("mlfunctions_trainings_total")]

    train_model(train)
    refused = requests.post(f"{train.url}/", json={"estimator": "NoSuchEstimator"}, timeout=60)
    assert refused.status_code == 400
    for _ in range(3):  # probes and scrapes are not traffic
        assert requests.get(f"{train.url}/_/health", timeout=5).status_code == 200
    after = samples(train)
    assert after['mlfunctions_trainings_total{result="success"}'] == 1
    assert after['mlfunctions_trainings_total{result="rejected"}'] == 1
    assert after["mlfunctions_training_seconds_count"] == 1
    assert after["mlfunctions_training_seconds_sum"] > 0
    assert after['http_requests_total{code="200",method="POST"}'] == 1
    assert after['http_requests_total{code="400",method="POST"}'] == 1
    assert after['http_request_duration_seconds_count{code="200",method="POST"}'] == 1
    assert not [k for k in after if k.startswith("http_requests_total") and 'method="GET"' in k]
    assert after["http_requests_in_flight"] == 0


def test_predict_reports_the_version_it_serves_after_each_load(model_store, run_function):
    writer = model_store.token(["iris"], ["read", "write"])
    train = run_function(TRAIN_DIR, function_env(model_store, writer.token))
    assert train_model(train)["model"]["version"] == 1
    predict = run_function(PREDICT_DIR, function_env(model_store, writer.token, MODEL_REFRESH_SECONDS="0.2"))
    wait_for_version(predict, 1)
    first = samples(predict)
    assert first['mlfunctions_function_info{model="iris",task="predict"}'] == 1
    assert first['mlfunctions_model_version_info{model="iris",version="1"}'] == 1
    assert first['mlfunctions_model_loads_total{result="success"}'] == 1
    assert first["mlfunctions_cold_start_seconds"] > 0
    assert first['http_requests_total{code="200",method="POST"}'] >= 1

    assert train_model(train)["model"]["version"] == 2
    wait_for_version(predict, 2)
    wait_for(lambda: samples(predict).get('mlfunctions_model_version_info{model="iris",version="2"}') == 1,
             what="predict's /_/metrics to report version 2")
    second = samples(predict)
    assert not [k for k in second if k.startswith("mlfunctions_model_version_info") and 'version="1"' in k]
    assert second['mlfunctions_model_loads_total{result="success"}'] == 2
    bad = predict_rows(predict, [[1.0]])
    assert bad.status_code == 400
    assert samples(predict)['http_requests_total{code="400",method="POST"}'] == 1


def test_predict_without_a_model_has_no_version_and_counts_the_failed_load(model_store, run_function):
    reader = model_store.token(["iris"], ["read"])
    predict = run_function(PREDICT_DIR, function_env(model_store, reader.token))
    wait_for(lambda: samples(predict).get('mlfunctions_model_loads_total{result="error"}', 0) >= 1,
             what="the failed first load to be counted")
    assert not [k for k in samples(predict) if k.startswith("mlfunctions_model_version_info")]
    assert predict_rows(predict, SETOSA).status_code >= 400
