"""Bearer tokens: minting, hashing and scope checks. Pure functions; the catalog stores only hashes.

A scoped token reads `iris_<id>_<secret>`. The id is public (it names the token in listings, logs and a
version's uploader); the secret is 256 random bits, shown once at creation and stored as its SHA-256 (a slow
hash buys nothing for secrets of that entropy). Comparisons use hmac.compare_digest so their time does not
depend on the secret.

A token's scope is its model globs and its rights. A token may also act for a namespace (a tenant): then the
models' ownership and grants (tenancy.py) decide as well, on top of the scope.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

PREFIX = "iris"
ADMIN_ID = "admin"


class Right(StrEnum):
    """Independent rights: `write` only adds versions; removing versions and moving aliases are their own."""

    READ = "read"  # list, describe and download versions
    WRITE = "write"  # upload new versions
    DELETE = "delete"  # delete versions
    ALIAS = "alias"  # create, move and delete aliases


RIGHTS = tuple(right.value for right in Right)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or a scoped token with model globs, rights and (optionally) a namespace."""

    id: str
    description: str = ""
    models: tuple[str, ...] = ()
    rights: frozenset[str] = frozenset()
    admin: bool = False
    namespace: str | None = None  # the tenant it acts for; None: a store-wide token (ownership not consulted)
    metadata: tuple[tuple[str, str], ...] = ()  # what the minter said about the holder, e.g. its MLFunction

    def may(self, right: Right, model: str) -> bool:
        if self.admin:
            return True
        return right.value in self.rights and any(fnmatch.fnmatchcase(model, glob) for glob in self.models)

    @property
    def uploader(self) -> str:
        """What a version records as its uploader: never the secret."""
        return f"{self.id} ({self.description})" if self.description else self.id

    def attribution(self) -> dict[str, Any]:
        """What a version records as `written_by`: the token, its namespace and the minter's metadata."""
        return {
            "token_id": self.id,
            "namespace": self.namespace,
            "description": self.description,
            "metadata": dict(self.metadata),
        }


ADMIN = Principal(id=ADMIN_ID, description="", admin=True)


@dataclass(frozen=True)
class Minted:
    id: str
    token: str
    secret_sha256: str


def mint() -> Minted:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return Minted(id=token_id, token=f"{PREFIX}_{token_id}_{secret}", secret_sha256=digest(secret))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed scoped token, else None."""
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not token_id or not secret:
        return None
    return token_id, secret


def same_secret(presented: str, expected_sha256: str) -> bool:
    return hmac.compare_digest(digest(presented), expected_sha256)


def is_admin_token(presented: str, admin_sha256: str) -> bool:
    return hmac.compare_digest(digest(presented), admin_sha256)
