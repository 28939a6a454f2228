"""Unit tests of the pure rules: names, version references, token format and scopes."""

from __future__ import annotations

import pytest

from iris_server import tokens
from iris_server.names import is_alias, is_dns_label, is_scope, parse_version_ref
from iris_server.tokens import Principal, Right


@pytest.mark.parametrize("name", ["iris", "a", "iris-v2", "0abc", "a" * 63])
def test_dns_labels_accepted(name):
    assert is_dns_label(name)


@pytest.mark.parametrize(
    "name",
    ["", "Iris", "-iris", "iris-", "iris_v2", "a" * 64, "..", ".", "a/b", "a.b", "iris\n", " iris", "ïris"],
)
def test_everything_else_is_not_a_dns_label(name):
    assert not is_dns_label(name)


def test_version_refs():
    assert parse_version_ref("latest").latest
    assert parse_version_ref("3").number == 3
    assert parse_version_ref("production").alias == "production"
    for bad in ["0", "03", "-1", "Prod", "..", "1.0", "9" * 19, ""]:
        with pytest.raises(ValueError, match="version must be"):
            parse_version_ref(bad)


def test_aliases_cannot_look_like_versions():
    assert is_alias("production") and is_alias("v3")
    assert not is_alias("3") and not is_alias("latest") and not is_alias("Prod")


def test_scopes_allow_globs_only_over_label_characters():
    assert is_scope("iris") and is_scope("team-a-*") and is_scope("*") and is_scope("iris-v?")
    assert not is_scope("../*") and not is_scope("a/b") and not is_scope("[a-z]*") and not is_scope("")


def test_minted_tokens_split_back_and_store_only_a_hash():
    minted = tokens.mint()
    token_id, secret = tokens.split(minted.token)
    assert token_id == minted.id
    assert secret not in minted.secret_sha256 and minted.token not in minted.secret_sha256
    assert tokens.same_secret(secret, minted.secret_sha256)
    assert not tokens.same_secret(secret + "x", minted.secret_sha256)
    assert tokens.mint().token != minted.token


@pytest.mark.parametrize("text", ["", "iris", "iris_", "iris__secret", "bearer_abc_def", "iris_id_"])
def test_malformed_tokens_do_not_split(text):
    assert tokens.split(text) is None


def test_scope_checks_need_both_the_right_and_a_matching_glob():
    reader = Principal(id="r", models=("iris", "team-*"), rights=frozenset({"read"}))
    assert reader.may(Right.READ, "iris") and reader.may(Right.READ, "team-x")
    assert not reader.may(Right.WRITE, "iris")
    assert not reader.may(Right.READ, "wine") and not reader.may(Right.READ, "iris2")
    assert tokens.ADMIN.may(Right.WRITE, "anything")


def test_uploader_names_the_token_never_the_secret():
    assert Principal(id="abc", description="train iris").uploader == "abc (train iris)"
    assert Principal(id="abc").uploader == "abc"
