"""Owners and grants in the catalog: which namespace owns a model, which other namespaces may do what to it.

The rules that read these facts are in tenancy.py; this module only stores and fetches them, on the catalog's
connections (so a claim can share the write transaction of the upload that makes it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalog import Catalog
from .records import Missing, Owned, now
from .tenancy import ModelAccess


@dataclass(frozen=True)
class Claim:
    """A model's owner: the namespace, when, and by whom (`admin`, or the token id of the claiming upload)."""

    model: str
    namespace: str
    claimed_at: str
    claimed_by: str

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "owner": self.namespace,
            "claimed_at": self.claimed_at,
            "claimed_by": self.claimed_by,
        }


@dataclass(frozen=True)
class ModelOwnership:
    """Everything about who may use one model, as the admin sees it."""

    model: str
    exists: bool
    claim: Claim | None = None
    grants: dict[str, list[str]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "owner": self.claim.namespace if self.claim else None,
            "claimed_at": self.claim.claimed_at if self.claim else None,
            "claimed_by": self.claim.claimed_by if self.claim else None,
            "exists": self.exists,
            "grants": self.grants,
        }


class Ownership:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # -- what the rules need
    # --------------------------------------------------------------------------------------

    def access(self, model: str, db: sqlite3.Connection | None = None) -> ModelAccess:
        """The facts tenancy.check decides on; pass `db` to read them inside an open write transaction."""
        db = db or self.catalog.connection()
        owner = db.execute("SELECT namespace FROM owners WHERE model = ?", (model,)).fetchone()
        grants = {
            namespace: frozenset(json.loads(rights))
            for namespace, rights in db.execute(
                "SELECT namespace, rights FROM grants WHERE model = ?", (model,)
            )
        }
        exists = db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is not None
        return ModelAccess(model=model, owner=owner[0] if owner else None, grants=grants, exists=exists)

    def access_map(self, models: Iterable[str]) -> dict[str, ModelAccess]:
        """ModelAccess of each of `models` (which exist) in three queries, for listings."""
        db = self.catalog.connection()
        owners = dict(db.execute("SELECT model, namespace FROM owners"))
        grants: dict[str, dict[str, frozenset[str]]] = {}
        for model, namespace, rights in db.execute("SELECT model, namespace, rights FROM grants"):
            grants.setdefault(model, {})[namespace] = frozenset(json.loads(rights))
        return {
            model: ModelAccess(model, owners.get(model), grants.get(model, {}), exists=True)
            for model in models
        }

    @staticmethod
    def record_claim(db: sqlite3.Connection, model: str, namespace: str, claimed_by: str) -> None:
        """Inside an open write transaction: make `namespace` the owner of an unowned model."""
        db.execute(
            "INSERT INTO owners (model, namespace, claimed_at, claimed_by) VALUES (?, ?, ?, ?)",
            (model, namespace, now(), claimed_by),
        )

    # -- the admin's calls
    # ----------------------------------------------------------------------------------------

    def claim(self, model: str, namespace: str, claimed_by: str = "admin") -> tuple[Claim, bool]:
        """Make `namespace` the owner: (the claim, True) if it was new, (the claim, False) if it already was.

        Raises Owned when another namespace owns the model."""
        with self.catalog.write() as db:
            existing = self._claim(db, model)
            if existing is not None:
                if existing.namespace != namespace:
                    raise Owned(model, existing.namespace)
                return existing, False
            self.record_claim(db, model, namespace, claimed_by)
            return self._claim(db, model), True

    def release(self, model: str) -> Claim:
        """Remove the model's owner (its grants stay); raises Missing when it has none."""
        with self.catalog.write() as db:
            existing = self._claim(db, model)
            if existing is None:
                raise Missing(f"model {model!r} has no owner")
            db.execute("DELETE FROM owners WHERE model = ?", (model,))
            return existing

    def grant(self, model: str, namespace: str, rights: Iterable[str]) -> dict[str, list[str]]:
        """Set (replace) what `namespace` may do to `model`; returns the model's grants."""
        with self.catalog.write() as db:
            db.execute(
                "INSERT INTO grants (model, namespace, rights, granted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model, namespace) DO UPDATE SET rights = excluded.rights, "
                "granted_at = excluded.granted_at",
                (model, namespace, json.dumps(sorted(set(rights))), now()),
            )
        return self.grants(model)

    def revoke_grant(self, model: str, namespace: str) -> None:
        with self.catalog.write() as db:
            deleted = db.execute(
                "DELETE FROM grants WHERE model = ? AND namespace = ?", (model, namespace)
            ).rowcount
            if not deleted:
                raise Missing(f"namespace {namespace!r} has no grant on model {model!r}")

    def grants(self, model: str) -> dict[str, list[str]]:
        rows = self.catalog.connection().execute(
            "SELECT namespace, rights FROM grants WHERE model = ? ORDER BY namespace", (model,)
        )
        return {namespace: json.loads(rights) for namespace, rights in rows}

    def describe(self, model: str) -> ModelOwnership:
        db = self.catalog.connection()
        exists = db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is not None
        return ModelOwnership(model, exists, self._claim(db, model), self.grants(model))

    def everything(self, namespace: str | None = None) -> list[ModelOwnership]:
        """Every model that exists, is owned or is granted; with `namespace`, those it owns or is granted."""
        db = self.catalog.connection()
        existing = {name for (name,) in db.execute("SELECT name FROM models")}
        claims = {
            row[0]: Claim(*row)
            for row in db.execute("SELECT model, namespace, claimed_at, claimed_by FROM owners")
        }
        grants: dict[str, dict[str, list[str]]] = {}
        for model, grantee, rights in db.execute(
            "SELECT model, namespace, rights FROM grants ORDER BY namespace"
        ):
            grants.setdefault(model, {})[grantee] = json.loads(rights)
        found = [
            ModelOwnership(model, model in existing, claims.get(model), grants.get(model, {}))
            for model in sorted(existing | claims.keys() | grants.keys())
        ]
        if namespace is None:
            return found
        return [
            entry
            for entry in found
            if (entry.claim and entry.claim.namespace == namespace) or namespace in entry.grants
        ]

    @staticmethod
    def _claim(db: sqlite3.Connection, model: str) -> Claim | None:
        row = db.execute(
            "SELECT model, namespace, claimed_at, claimed_by FROM owners WHERE model = ?", (model,)
        ).fetchone()
        return Claim(*row) if row else None
