"""Applying and removing an owner's children, never touching an object that belongs to someone else."""

from __future__ import annotations

from .kube import Applied, Kind, Kube, kind_of
from .naming import Owner, owner_of


class NotOwned(Exception):
    """An object with a child's name exists and is not ours: report it, never adopt or overwrite it."""

    def __init__(self, kind: Kind, namespace: str, name: str, current_owner: str | None):
        self.object = kind.describe(namespace, name)
        holder = f"it belongs to {current_owner}" if current_owner else "it was not created by mlfunctions-operator"
        super().__init__(f"{self.object} already exists and {holder}; delete or rename it to let the operator "
                         "create its own")


async def ensure(kube: Kube, owner: Owner, manifest: dict) -> Applied:
    """Server-side apply `manifest` unless an object of that name exists that `owner` does not own.

    The read before the write is the ownership check; the apply itself carries no precondition, so an object
    created by someone else in the instant between the two would be merged into. The next reconcile cannot tell
    that apart from ours, which is why the check is on labels only foreign tools would not set.
    """
    kind = kind_of(manifest)
    meta = manifest["metadata"]
    existing = await kube.get(kind, meta["namespace"], meta["name"])
    if existing is not None and not owner.owns(existing):
        raise NotOwned(kind, meta["namespace"], meta["name"], owner_of(existing))
    return await kube.apply(manifest)


async def remove(kube: Kube, owner: Owner, kind: Kind, namespace: str, name: str) -> bool:
    """Delete the child if it exists and is ours (that very object: uid precondition). True if deleted."""
    existing = await kube.get(kind, namespace, name)
    if existing is None or not owner.owns(existing):
        return False
    return await kube.delete(kind, namespace, name, uid=existing["metadata"]["uid"])
