"""The OpenFaaS Pro scaling rules (pure functions)."""

import pytest
from local_openfaas.runtime.load import LoadMeter
from local_openfaas.runtime.scaling import (
    InvalidScalingLabel,
    ScalingPolicy,
    desired_replicas,
    parse_duration,
)


@pytest.mark.parametrize("text, seconds", [
    ("15m", 900.0), ("2s", 2.0), ("1h30m", 5400.0), ("1.5s", 1.5), ("250ms", 0.25), ("0", 0.0), ("1m0.5s", 60.5),
])
def test_go_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "5x", "1h 30m", "-"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="Go duration"):
        parse_duration(text)


def test_defaults_are_openfaas_pro_defaults():
    policy = ScalingPolicy.from_labels({})
    assert policy == ScalingPolicy(min_replicas=1, max_replicas=20, zero=False, zero_duration=900.0, target=50.0,
                                   target_proportion=0.9, type="rps")


def test_labels_are_read():
    policy = ScalingPolicy.from_labels({
        "com.openfaas.scale.min": "2", "com.openfaas.scale.max": "7", "com.openfaas.scale.zero": "true",
        "com.openfaas.scale.zero-duration": "2s", "com.openfaas.scale.target": "10",
        "com.openfaas.scale.target-proportion": "0.5", "com.openfaas.scale.type": "capacity", "other": "x"})
    assert policy == ScalingPolicy(2, 7, True, 2.0, 10.0, 0.5, "capacity")


def test_min_zero_means_scale_to_zero_and_one_replica_under_traffic():
    policy = ScalingPolicy.from_labels({"com.openfaas.scale.min": "0"})
    assert policy.zero and policy.floor == 1


@pytest.mark.parametrize("label, value, expected", [
    ("min", "-1", "integer >= 0"), ("max", "many", "integer >= 1"), ("zero", "maybe", "true or false"),
    ("zero-duration", "15", "Go duration"), ("target", "0", "number > 0"),
    ("target-proportion", "1.5", "<= 1"), ("type", "memory", "rps, capacity, cpu"),
])
def test_bad_labels_name_the_label_and_what_is_expected(label, value, expected):
    with pytest.raises(InvalidScalingLabel, match=rf"com\.openfaas\.scale\.{label}=.*expected.*{expected}"):
        ScalingPolicy.from_labels({f"com.openfaas.scale.{label}": value})


def test_max_below_min_is_refused():
    with pytest.raises(InvalidScalingLabel, match="max=2: expected >= 3"):
        ScalingPolicy.from_labels({"com.openfaas.scale.min": "3", "com.openfaas.scale.max": "2"})


def test_the_documented_capacity_example():
    # OpenFaaS docs: target 5 in-flight, proportion 1.0; 15 in flight on 1 replica -> 3; 25 on 3 -> 5; 0 -> min.
    policy = ScalingPolicy(min_replicas=1, max_replicas=10, target=5, target_proportion=1.0, type="capacity")
    assert desired_replicas(policy, ready=1, load=15, idle_seconds=0, current=1) == 3
    assert desired_replicas(policy, ready=3, load=25, idle_seconds=0, current=3) == 5
    assert desired_replicas(policy, ready=3, load=0, idle_seconds=5, current=3) == 1


def test_target_proportion_scales_early():
    policy = ScalingPolicy(target=100, target_proportion=0.7)
    assert desired_replicas(policy, ready=1, load=90, idle_seconds=0, current=1) == 2
    assert desired_replicas(policy, ready=1, load=60, idle_seconds=0, current=1) == 1


def test_max_caps_the_count():
    policy = ScalingPolicy(max_replicas=4, target=10, target_proportion=1.0)
    assert desired_replicas(policy, ready=2, load=1000, idle_seconds=0, current=2) == 4


def test_idle_function_goes_to_zero_only_when_allowed():
    zero = ScalingPolicy(zero=True, zero_duration=2.0)
    assert desired_replicas(zero, ready=1, load=0, idle_seconds=2.5, current=1) == 0
    assert desired_replicas(zero, ready=1, load=0, idle_seconds=1.0, current=1) == 1
    never = ScalingPolicy(zero=False, zero_duration=2.0)
    assert desired_replicas(never, ready=1, load=0, idle_seconds=3600, current=1) == 1


def test_zero_stays_zero_until_traffic_but_a_min_one_function_comes_back():
    # At zero, recent traffic in the rps window does not wake a function: only a new request does (the gateway).
    assert desired_replicas(ScalingPolicy(zero=True), ready=0, load=3.0, idle_seconds=0.5, current=0) == 0
    assert desired_replicas(ScalingPolicy(zero=False), ready=0, load=0, idle_seconds=0.5, current=0) == 1


def test_load_meter_counts_rps_inflight_and_idle_time():
    now = [1000.0]
    meter = LoadMeter(window=10.0, clock=lambda: now[0])
    for _ in range(30):
        meter.started()
        meter.finished()
    assert meter.rps() == pytest.approx(3.0)
    assert meter.invocations == 30
    meter.started()
    now[0] += 60
    assert meter.idle_seconds() == 0.0  # a request in flight: never idle
    meter.finished()
    now[0] += 5
    assert meter.idle_seconds() == pytest.approx(5.0)
    assert meter.rps() == pytest.approx(0.1)  # the 30 old ones left the window, the long one counts
