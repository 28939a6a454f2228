"""Namespaces are tenants: who may use a model beyond what a token's scope says. Pure rules over plain facts.

A model may have one owner, a namespace, recorded in the catalog: claimed by the admin (the operator) ahead of
training, or by the first upload of a namespaced token to a model nobody has used yet. The admin may also
grant other namespaces some rights on a model (a ModelStore's list of who may read or write what). A
namespaced token may then act on a model only

- with a right granted to its namespace on that model, or
- for a model its namespace owns, or
- on a model that is still nobody's: no owner, no grant, never any version (reads then find nothing, and the
  first upload claims it).

A model with versions but no owner (a store from before ownership, or versions written by the admin or by a
store-wide token) is used by namespaced tokens only once the admin has claimed or granted it: the store cannot
know which tenant it belongs to, and guessing would hand it to whoever asks first.

Tokens without a namespace are store-wide (humans, CI, older operators): their model globs and rights are all
that is checked, as before ownership existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .tokens import Right


@dataclass(frozen=True)
class ModelAccess:
    """What the catalog knows about who may use one model."""

    model: str
    owner: str | None = None
    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)  # namespace -> rights
    exists: bool = False  # the model has (or had) versions

    @property
    def unused(self) -> bool:
        """Nobody's yet: no owner, no grant, never a version. The first namespaced upload claims it."""
        return self.owner is None and not self.grants and not self.exists


@dataclass(frozen=True)
class Denial:
    """Why a namespace may not do `right` to a model; the API answers it as 403 with these fields."""

    model: str
    owner: str | None
    namespace: str
    right: str
    message: str

    def fields(self) -> dict[str, Any]:
        return {"model": self.model, "owner": self.owner, "namespace": self.namespace, "right": self.right}


class Denied(Exception):
    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.message)
        self.denial = denial


def check(namespace: str | None, right: Right, access: ModelAccess) -> Denial | None:
    """None when a token acting for `namespace` may do `right` to the model (its scope is checked apart)."""
    if namespace is None:
        return None
    if right.value in access.grants.get(namespace, ()):
        return None
    if access.owner == namespace or access.unused:
        return None
    model = access.model
    if access.owner is not None:
        message = (
            f"model {model!r} belongs to namespace {access.owner!r}; namespace {namespace!r} has no "
            f"{right.value} grant on it"
        )
    elif access.grants:
        message = f"model {model!r} has no owner and namespace {namespace!r} has no {right.value} grant on it"
    else:
        message = (
            f"model {model!r} has versions but no owner yet: the store's admin claims it for a namespace "
            f"(PUT /v1/models/{model}/owner) or grants it before a namespaced token may use it"
        )
    return Denial(model=model, owner=access.owner, namespace=namespace, right=right.value, message=message)


def claims(namespace: str | None, access: ModelAccess) -> bool:
    """True when an upload by a token acting for `namespace` makes that namespace the model's owner."""
    return namespace is not None and access.unused
