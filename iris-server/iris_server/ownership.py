"""Owners and grants in the catalog: which namespace owns a model, which other namespaces may do what to it.

The rules that read these facts are in tenancy.py; this module only stores and fetches them, on the catalog's
connections (so a claim can share the write transaction of the upload that makes it). Every write holds
the model's lock (database.py), as the catalog's writes to that model do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, exists, select

from .catalog import Catalog
from .catalog_schema import grants as grants_table
from .catalog_schema import models, owners
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

    def access(self, model: str, db: Connection | None = None) -> ModelAccess:
        """The facts tenancy.check decides on; pass `db` to read them inside an open write transaction."""
        if db is None:
            with self.catalog.read() as connection:
                return _access(connection, model)
        return _access(db, model)

    def access_map(self, models_: Iterable[str]) -> dict[str, ModelAccess]:
        """ModelAccess of each of `models_` (which exist) in two queries, for listings."""
        with self.catalog.read() as db:
            claimed = dict(db.execute(select(owners.c.model, owners.c.namespace)).all())
            granted: dict[str, dict[str, frozenset[str]]] = {}
            for model, namespace, rights in db.execute(
                select(grants_table.c.model, grants_table.c.namespace, grants_table.c.rights)
            ):
                granted.setdefault(model, {})[namespace] = frozenset(json.loads(rights))
        return {
            model: ModelAccess(model, claimed.get(model), granted.get(model, {}), exists=True)
            for model in models_
        }

    @staticmethod
    def record_claim(db: Connection, model: str, namespace: str, claimed_by: str) -> None:
        """Inside an open write transaction: make `namespace` the owner of an unowned model."""
        db.execute(
            owners.insert().values(model=model, namespace=namespace, claimed_at=now(), claimed_by=claimed_by)
        )

    # -- the admin's calls
    # ----------------------------------------------------------------------------------------

    def claim(self, model: str, namespace: str, claimed_by: str = "admin") -> tuple[Claim, bool]:
        """Make `namespace` the owner: (the claim, True) if it was new, (the claim, False) if it already was.

        Raises Owned when another namespace owns the model."""
        with self.catalog.write(model) as db:
            existing = _claim(db, model)
            if existing is not None:
                if existing.namespace != namespace:
                    raise Owned(model, existing.namespace)
                return existing, False
            self.record_claim(db, model, namespace, claimed_by)
            return _claim(db, model), True

    def release(self, model: str) -> Claim:
        """Remove the model's owner (its grants stay); raises Missing when it has none."""
        with self.catalog.write(model) as db:
            existing = _claim(db, model)
            if existing is None:
                raise Missing(f"model {model!r} has no owner")
            db.execute(delete(owners).where(owners.c.model == model))
            return existing

    def grant(self, model: str, namespace: str, rights: Iterable[str]) -> dict[str, list[str]]:
        """Set (replace) what `namespace` may do to `model`; returns the model's grants."""
        with self.catalog.write(model) as db:
            upsert = self.catalog.database.insert(grants_table).values(
                model=model, namespace=namespace, rights=json.dumps(sorted(set(rights))), granted_at=now()
            )
            db.execute(
                upsert.on_conflict_do_update(
                    index_elements=[grants_table.c.model, grants_table.c.namespace],
                    set_={"rights": upsert.excluded.rights, "granted_at": upsert.excluded.granted_at},
                )
            )
        return self.grants(model)

    def revoke_grant(self, model: str, namespace: str) -> None:
        with self.catalog.write(model) as db:
            deleted = db.execute(
                delete(grants_table).where(
                    grants_table.c.model == model, grants_table.c.namespace == namespace
                )
            ).rowcount
            if not deleted:
                raise Missing(f"namespace {namespace!r} has no grant on model {model!r}")

    def grants(self, model: str) -> dict[str, list[str]]:
        with self.catalog.read() as db:
            return _grants(db, model)

    def describe(self, model: str) -> ModelOwnership:
        with self.catalog.read() as db:
            found = db.execute(select(exists().where(models.c.name == model))).scalar()
            return ModelOwnership(model, found, _claim(db, model), _grants(db, model))

    def everything(self, namespace: str | None = None) -> list[ModelOwnership]:
        """Every model that exists, is owned or is granted; with `namespace`, those it owns or is granted."""
        with self.catalog.database.read(snapshot=True) as db:
            existing = set(db.scalars(select(models.c.name)))
            claims = {
                row[0]: Claim(*row)
                for row in db.execute(
                    select(owners.c.model, owners.c.namespace, owners.c.claimed_at, owners.c.claimed_by)
                )
            }
            granted: dict[str, dict[str, list[str]]] = {}
            for model, grantee, rights in db.execute(
                select(grants_table.c.model, grants_table.c.namespace, grants_table.c.rights).order_by(
                    grants_table.c.namespace
                )
            ):
                granted.setdefault(model, {})[grantee] = json.loads(rights)
        found = [
            ModelOwnership(model, model in existing, claims.get(model), granted.get(model, {}))
            for model in sorted(existing | claims.keys() | granted.keys())
        ]
        if namespace is None:
            return found
        return [
            entry
            for entry in found
            if (entry.claim and entry.claim.namespace == namespace) or namespace in entry.grants
        ]


def _access(db: Connection, model: str) -> ModelAccess:
    owner = db.execute(select(owners.c.namespace).where(owners.c.model == model)).scalar_one_or_none()
    granted = {
        namespace: frozenset(json.loads(rights))
        for namespace, rights in db.execute(
            select(grants_table.c.namespace, grants_table.c.rights).where(grants_table.c.model == model)
        )
    }
    found = db.execute(select(exists().where(models.c.name == model))).scalar()
    return ModelAccess(model=model, owner=owner, grants=granted, exists=found)


def _grants(db: Connection, model: str) -> dict[str, list[str]]:
    rows = db.execute(
        select(grants_table.c.namespace, grants_table.c.rights)
        .where(grants_table.c.model == model)
        .order_by(grants_table.c.namespace)
    )
    return {namespace: json.loads(rights) for namespace, rights in rows}


def _claim(db: Connection, model: str) -> Claim | None:
    row = db.execute(
        select(owners.c.model, owners.c.namespace, owners.c.claimed_at, owners.c.claimed_by).where(
            owners.c.model == model
        )
    ).first()
    return Claim(*row) if row else None
