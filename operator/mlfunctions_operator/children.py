"""Applying and removing an owner's children, never touching an object that belongs to someone else."""

from __future__ import annotations

from .kube import Applied, Kind, Kube, KubeError, kind_of
from .naming import Owner, owner_of

# (plural, namespace, name) -> uid of a child this operator created or verified as its own.
KnownChildren = dict[tuple[str, str, str], str]


class NotOwned(Exception):
    """An object with a child's name exists and is not ours: report it, never adopt or overwrite it."""

    def __init__(self, kind: Kind, namespace: str, name: str, current_owner: str | None):
        self.object = kind.describe(namespace, name)
        holder = f"it belongs to {current_owner}" if current_owner else "it was not created by mlfunctions-operator"
        super().__init__(f"{self.object} already exists and {holder}; delete or rename it to let the operator "
                         "create its own")


async def ensure(kube: Kube, owner: Owner, manifest: dict, known: KnownChildren) -> Applied:
    """Server-side apply `manifest`, unless an object of that name exists that `owner` does not own.

    The first time, a read checks ownership. Afterwards the child's uid, remembered in `known`, goes into the
    apply as a precondition instead: the API server refuses it if the object was deleted (409) or replaced by
    another one (422: uid is immutable), and only then is the child read and checked again.
    """
    kind = kind_of(manifest)
    meta = manifest["metadata"]
    key = (kind.plural, meta["namespace"], meta["name"])
    uid = known.get(key)
    if uid is not None:
        try:
            return await kube.apply({**manifest, "metadata": {**meta, "uid": uid}})
        except KubeError as error:
            if error.status not in (409, 422):
                raise
            known.pop(key, None)
    existing = await kube.get(kind, meta["namespace"], meta["name"], cached=True)
    if existing is not None and not owner.owns(existing):
        raise NotOwned(kind, meta["namespace"], meta["name"], owner_of(existing))
    applied = await kube.apply(manifest)
    known[key] = applied.obj["metadata"]["uid"]
    return applied


async def remove(kube: Kube, owner: Owner, kind: Kind, namespace: str, name: str, known: KnownChildren) -> bool:
    """Delete the child if it exists and is ours (that very object: uid precondition). True if deleted."""
    known.pop((kind.plural, namespace, name), None)
    existing = await kube.get(kind, namespace, name)
    if existing is None or not owner.owns(existing):
        return False
    return await kube.delete(kind, namespace, name, uid=existing["metadata"]["uid"])
