"""Caps per tenant, pure: what one MLFunction may ask for, and how a namespace's MLFunctions are counted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from mlfunctions_operator.api import MLFunctionSpec
from mlfunctions_operator.builders.limits import (
    LimitExceeded,
    Peer,
    check_function,
    check_namespace,
    effective_resources,
    peer_of,
    usage_of,
)
from mlfunctions_operator.config import OperatorConfig

CAPS = OperatorConfig(max_cpu_per_replica="1", max_memory_per_replica="1Gi", max_replicas_per_namespace=10,
                      max_cpu_per_namespace="4", max_functions_per_namespace=3)


def spec(**fields) -> MLFunctionSpec:
    return MLFunctionSpec.model_validate({"task": "predict", "model": {"name": "m"}, **fields})


def peer(name: str, created: str, replicas: int, cpu: str = "100m") -> Peer:
    return Peer(name, name, created, usage_of(spec(scaling={"maxReplicas": replicas},
                                                  resources={"requests": {"cpu": cpu}}), CAPS))


def test_no_caps_no_limits_and_nothing_refused():
    plain = OperatorConfig()
    big = spec(scaling={"maxReplicas": 1000}, resources={"requests": {"cpu": "64"}})
    assert effective_resources(big, plain) == {"requests": {"cpu": "64"}}
    check_function(big, plain)
    check_namespace("ns", peer("a", "2026-01-01T00:00:00Z", 1000), [], plain)


def test_a_replica_without_a_limit_gets_the_cap_and_counts_its_request_or_limit():
    resources = effective_resources(spec(resources={"requests": {"cpu": "250m"}}), CAPS)
    assert resources == {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    usage = usage_of(spec(scaling={"maxReplicas": 2}, resources={"requests": {"cpu": "250m"}}), CAPS)
    assert (usage.replicas, usage.cpu, usage.memory) == (2, Decimal("0.5"), 2 * 1024**3)


@pytest.mark.parametrize("fields,field", [
    ({"resources": {"requests": {"cpu": "1500m"}}}, "spec.resources.requests.cpu"),
    ({"resources": {"limits": {"memory": "2Gi"}}}, "spec.resources.limits.memory"),
])
def test_per_replica_caps_name_the_field(fields, field):
    with pytest.raises(LimitExceeded) as refused:
        check_function(spec(**fields), CAPS)
    assert refused.value.field == field and field in str(refused.value)


def test_older_mlfunctions_keep_their_share_and_a_refused_one_counts_for_nothing():
    old = [peer("a", "2026-01-01T00:00:00Z", 5), peer("b", "2026-01-02T00:00:00Z", 5)]
    late = peer("c", "2026-01-03T00:00:00Z", 1)
    with pytest.raises(LimitExceeded, match="to 11 replicas") as refused:
        check_namespace("ns", late, [*old, late], CAPS)
    assert refused.value.field == "spec.scaling.maxReplicas"
    check_namespace("ns", old[0], [*old, late], CAPS)  # the older ones are fine
    # b grows past the cap: b is refused, and c (younger) is counted after a alone
    grown = peer("b", "2026-01-02T00:00:00Z", 6)
    with pytest.raises(LimitExceeded):
        check_namespace("ns", grown, [old[0], grown, late], CAPS)
    check_namespace("ns", late, [old[0], grown, late], CAPS)


def test_cpu_and_count_per_namespace():
    heavy = [peer(n, f"2026-01-0{i}T00:00:00Z", 2, cpu="1") for i, n in enumerate("ab", start=1)]
    extra = peer("c", "2026-01-09T00:00:00Z", 1, cpu="100m")
    with pytest.raises(LimitExceeded, match="cpu") as refused:
        check_namespace("ns", extra, [*heavy, extra], CAPS)
    assert refused.value.field == "spec.resources.requests.cpu"
    small = [peer(n, f"2026-01-0{i}T00:00:00Z", 1) for i, n in enumerate("abcd", start=1)]
    with pytest.raises(LimitExceeded, match="at most 3 MLFunctions"):
        check_namespace("ns", small[3], small, CAPS)


def test_objects_being_deleted_or_broken_are_not_counted():
    meta = {"uid": "u", "name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"}
    assert peer_of({"metadata": {**meta, "deletionTimestamp": "now"}, "spec": spec().dump()}, CAPS) is None
    assert peer_of({"metadata": meta, "spec": {"task": "serve"}}, CAPS) is None
    assert peer_of({"metadata": meta, "spec": spec().dump()}, CAPS).usage.replicas == 5
