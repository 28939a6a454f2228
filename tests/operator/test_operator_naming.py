"""Derived names: unique per (namespace, name), valid for every object they name, stable."""

import re

import pytest
from mlfunctions_operator.naming import FunctionNames, Owner, StoreNames, function_name, owner_of, store_url

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_names_read_as_namespace_dash_name_and_a_hash():
    assert function_name("data-science", "iris-predict") == "data-science-iris-predict-qrdifyuc4a"


def test_same_name_in_two_namespaces_gives_two_functions():
    assert function_name("team-a", "iris") != function_name("team-b", "iris")


@pytest.mark.parametrize("one,other", [
    (("a-b", "c"), ("a", "b-c")),                     # the same `<namespace>-<name>`
    (("team", "x" * 63), ("team", "x" * 62 + "y")),   # the same truncated prefix
    (("n" * 63, "iris"), ("n" * 63, "iris2")),
])
def test_owners_that_read_alike_get_different_names(one, other):
    assert function_name(*one) != function_name(*other)


def test_no_name_can_be_chosen_to_read_like_another_owners_name():
    """An attacker in namespace `a` picks `b-c-<victim's hash>` as its name: the hash of its own owner is
    appended after it, so the result is never the victim's `a-b-c-<hash>`."""
    victim = function_name("a-b", "c")
    squatter = function_name("a", f"b-c-{victim.rsplit('-', 1)[1]}")
    assert squatter != victim and squatter.startswith(victim)


def test_names_are_injective_over_many_owners():
    owners = [(f"ns{i % 37}-{'x' * (i % 5)}", f"{'y' * (i % 7)}m-{i}") for i in range(20000)]
    owners += [("a" * 63, "b" * 40 + str(i)) for i in range(2000)]  # all truncated to the same prefix
    assert len({function_name(ns, name) for ns, name in owners}) == len(set(owners))


@pytest.mark.parametrize("namespace,name", [
    ("n" * 63, "m" * 63),               # longest namespace and name
    ("a" * 40, "b" * 30),                # just over the limit together
    ("1-team", "iris"),                  # starts with a digit: not a DNS-1035 label as is
])
def test_long_or_unusual_names_are_shortened_with_a_hash(namespace, name):
    derived = function_name(namespace, name)
    assert len(derived) <= 63 and DNS_1035.match(derived), derived
    assert derived == function_name(namespace, name)  # deterministic
    assert derived != function_name(namespace, name[:-1] + "x")  # the hash tells near-identical owners apart


def test_truncated_names_of_different_owners_differ():
    assert function_name("n" * 63, "a" * 60 + "one") != function_name("n" * 63, "a" * 60 + "two")


def test_every_function_namespace_name_is_valid():
    names = FunctionNames.for_mlfunction("n" * 63, "m" * 63)
    for value in (names.function, names.service_account, names.role, names.role_binding):
        assert len(value) <= 63 and DNS_1035.match(value)
    assert names.credential_secret == f"{names.function}-model-store"


def test_store_names_and_url():
    names = StoreNames.for_store("default")
    assert names.service == "iris-server-default" and names.claim == "iris-server-default-data"
    assert store_url("default", "mlfunctions-system") == "http://iris-server-default.mlfunctions-system.svc:8080"


def test_ownership_is_decided_by_labels():
    owner = Owner("MLFunction", "ds", "iris", "uid-1")
    ours = {"metadata": {"labels": owner.labels()}}
    assert owner.owns(ours)
    # an earlier object of the same name (finalizer released by hand) is the same logical owner
    assert owner.owns({"metadata": {"labels": {**owner.labels(), "mlfunctions.dev/owner-uid": "uid-0"}}})
    other = Owner("MLFunction", "ds-x", "iris", "uid-2")
    assert not other.owns(ours)
    assert not owner.owns({"metadata": {"labels": {}}})
    assert not owner.owns({"metadata": {}})
    assert owner_of(ours) == "MLFunction ds/iris"
    assert owner_of({"metadata": {"labels": {"app": "x"}}}) is None
