"""Applying and removing an owner's children, never touching an object that belongs to someone else, and not
writing what is already as wanted."""

from __future__ import annotations

import hashlib
import json

from . import GROUP
from .kube import Applied, Kind, Kube, kind_of
from .naming import Owner, owner_of

ANNOTATION_APPLIED = f"{GROUP}/applied"


class NotOwned(Exception):
    """An object with a child's name exists and is not ours: report it, never adopt or overwrite it."""

    def __init__(self, kind: Kind, namespace: str, name: str, current_owner: str | None):
        self.object = kind.describe(namespace, name)
        holder = f"it belongs to {current_owner}" if current_owner else "it was not created by mlfunctions-operator"
        super().__init__(f"{self.object} already exists and {holder}; delete or rename it to let the operator "
                         "create its own")


def stamp(manifest: dict) -> dict:
    """The manifest with a digest of itself in an annotation: tells later whether what we applied last is what
    we want now (a spec change, including a field we stopped setting, changes the digest)."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    meta = manifest["metadata"]
    return {**manifest, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                             ANNOTATION_APPLIED: digest}}}


def contains(actual: object, wanted: object) -> bool:
    """Whether `actual` holds everything in `wanted` (the API server may have added defaults and others their
    own fields; those are not drift). Lists must match element by element."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(actual) == len(wanted) and \
            all(contains(a, w) for a, w in zip(actual, wanted))
    return actual == wanted


async def ensure(kube: Kube, owner: Owner, manifest: dict) -> Applied:
    """Make the child look like `manifest`: server-side apply it, unless an object of that name exists that
    `owner` does not own (NotOwned), or it is already as wanted (no write at all).

    The read comes from the API server's watch cache: cheap, so every resync can check every child. The apply
    carries the uid that was read as a precondition, so an object replaced in between is refused, not merged.
    """
    kind = kind_of(manifest)
    meta = manifest["metadata"]
    stamped = stamp(manifest)
    existing = await kube.get(kind, meta["namespace"], meta["name"], cached=True)
    if existing is None:
        return await kube.apply(stamped)
    if not owner.owns(existing):
        raise NotOwned(kind, meta["namespace"], meta["name"], owner_of(existing))
    if contains(existing, stamped):
        return Applied(existing, created=False)
    return await kube.apply({**stamped, "metadata": {**stamped["metadata"], "uid": existing["metadata"]["uid"]}})


async def remove(kube: Kube, owner: Owner, kind: Kind, namespace: str, name: str) -> bool:
    """Delete the child if it exists and is ours (that very object: uid precondition). True if deleted."""
    existing = await kube.get(kind, namespace, name)
    if existing is None or not owner.owns(existing):
        return False
    return await kube.delete(kind, namespace, name, uid=existing["metadata"]["uid"])
