"""Unit tests of the pure rules added for tenancy and costly inputs: who may use a model, which versions the
cap prunes, how deep JSON nests."""

from __future__ import annotations

import pytest

from iris_server import retention, tenancy
from iris_server.json_limits import depth, too_deep
from iris_server.tenancy import ModelAccess
from iris_server.tokens import Right

OWNED = ModelAccess("iris", owner="ds", grants={"analytics": frozenset({"read"})}, exists=True)


def test_store_wide_tokens_are_not_judged_by_tenancy():
    assert tenancy.check(None, Right.DELETE, OWNED) is None


@pytest.mark.parametrize("right", list(Right))
def test_the_owner_namespace_has_every_right(right):
    assert tenancy.check("ds", right, OWNED) is None


def test_a_grant_gives_exactly_its_rights():
    assert tenancy.check("analytics", Right.READ, OWNED) is None
    denial = tenancy.check("analytics", Right.WRITE, OWNED)
    assert denial.fields() == {"model": "iris", "owner": "ds", "namespace": "analytics", "right": "write"}


def test_another_namespace_is_denied_with_the_owner_named():
    denial = tenancy.check("eve", Right.READ, OWNED)
    assert denial.owner == "ds" and "belongs to namespace 'ds'" in denial.message


def test_a_model_nobody_used_is_open_and_claimed_by_the_first_write():
    unused = ModelAccess("new")
    assert unused.unused and tenancy.check("eve", Right.WRITE, unused) is None
    assert tenancy.claims("eve", unused) and not tenancy.claims(None, unused)
    assert not tenancy.claims("ds", OWNED)


@pytest.mark.parametrize(
    "access",
    [ModelAccess("old", exists=True), ModelAccess("granted", grants={"ds": frozenset({"read"})})],
    ids=["versions-without-owner", "grants-without-owner"],
)
def test_a_model_with_versions_or_grants_but_no_owner_is_not_claimable(access):
    assert not access.unused and not tenancy.claims("eve", access)
    denial = tenancy.check("eve", Right.WRITE, access)
    assert denial.owner is None and "no owner" in denial.message


def test_retention_prunes_the_oldest_unaliased_and_never_the_newest():
    assert retention.to_prune([1, 2, 3], set(), 3) == []
    assert retention.to_prune([1, 2, 3, 4], set(), 3) == [1]
    assert retention.to_prune([1, 2, 3, 4, 5], {1, 3}, 3) == [2, 4]
    assert retention.to_prune([7, 9, 12], {7}, 2) == [9]
    with pytest.raises(retention.CapReached):
        retention.to_prune([1, 2, 3], {1, 2}, 2)  # 1 and 2 aliased, 3 newest: nothing may go


@pytest.mark.parametrize(
    "text,expected",
    [
        ("3", 0),
        ("[]", 1),
        ('{"a": [{"b": []}]}', 4),
        ('["[[[[", "]]]"]', 1),  # brackets inside strings do not count
        (r'["\"[[[["]', 1),  # nor after an escaped quote
        ("[" * 5000, 5000),  # unbalanced: measured as far as it goes
    ],
)
def test_json_depth_is_measured_without_parsing(text, expected):
    assert depth(text) == expected
    assert depth(text.encode()) == expected


def test_too_deep_says_how_deep_and_the_limit():
    assert too_deep("[[]]", 2) is None
    assert too_deep("[[[]]]", 2) == "JSON nested 3 levels deep; at most 2 are accepted"
