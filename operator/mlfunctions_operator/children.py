"""Applying and removing an owner's children, never touching an object that belongs to someone else, and not
writing what is already as wanted.

A child is created with a plain create (POST), never with server-side apply: an apply creates *or updates*, so an
object someone else made between our read and our write would be taken over. A create that finds the name taken
reads the object that won and goes on only if it is ours. Later changes are server-side applies with the child's
uid as a precondition (the object we checked, not one that replaced it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import FIELD_MANAGER, GROUP
from .kube import Applied, Kind, Kube, KubeError, kind_of
from .naming import Owner, owner_of

ANNOTATION_APPLIED = f"{GROUP}/applied"


class NotOwned(Exception):
    """Objects with children's names exist and are not ours: report them, never adopt or overwrite them."""

    def __init__(self, kind: Kind, namespace: str, name: str, current_owner: str | None):
        self.found = [(kind.describe(namespace, name), current_owner)]  # (the object, who it belongs to)
        super().__init__(self._message())

    @classmethod
    def every(cls, errors: list[NotOwned]) -> NotOwned:
        """One error naming every foreign object."""
        first = errors[0]
        first.found = [found for error in errors for found in error.found]
        first.args = (first._message(),)
        return first

    @property
    def object(self) -> str:
        return self.found[0][0]

    def _message(self) -> str:
        parts = [f"{what} already exists and " + (f"it belongs to {holder}" if holder else
                                                   "it was not created by mlfunctions-operator")
                 for what, holder in self.found]
        them = "it" if len(self.found) == 1 else "them"
        return f"{'; '.join(parts)}; delete or rename {them} to let the operator create its own"


@dataclass(frozen=True)
class ChildRef:
    """Where a child is (or will be)."""

    kind: Kind
    namespace: str
    name: str

    @classmethod
    def of(cls, manifest: dict) -> ChildRef:
        return cls(kind_of(manifest), manifest["metadata"]["namespace"], manifest["metadata"]["name"])


# What ensure() is told when the caller has not read the child yet.
UNREAD = object()


# A watch cache of children (child_cache.ChildCaches.read): the child, or UNREAD if it cannot say.
CachedRead = Callable[["ChildRef"], object]


async def check_owned(kube: Kube, owner: Owner, refs: Iterable[ChildRef],
                      cached: CachedRead | None = None) -> dict[ChildRef, dict | None]:
    """Every child as it is now (None: absent), read before anything is created or issued: from the `cached`
    watch where it knows the child, else from the API server. Raises NotOwned naming every child that exists and
    is not `owner`'s: then nothing may be created."""
    refs = list(refs)

    async def read(ref: ChildRef) -> dict | None:
        if cached is not None and (obj := cached(ref)) is not UNREAD:
            return obj  # type: ignore[return-value]
        return await kube.get(ref.kind, ref.namespace, ref.name, cached=True)

    found = await asyncio.gather(*(read(r) for r in refs))
    foreign = [NotOwned(r.kind, r.namespace, r.name, owner_of(obj))
               for r, obj in zip(refs, found) if obj is not None and not owner.owns(obj)]
    if foreign:
        raise NotOwned.every(foreign)
    return dict(zip(refs, found))


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


async def ensure(kube: Kube, owner: Owner, manifest: dict, existing: dict | None | object = UNREAD) -> Applied:
    """Make the child look like `manifest`: create it if absent, change it if it is ours and drifted, and raise
    NotOwned if an object of that name is not ours. `existing`: the child as check_owned() read it.

    Reads come from the API server's watch cache: cheap, so every resync can check every child. A cache that
    lags is safe: a create that finds the name taken re-reads the object from etcd, and an update carries the
    uid that was read as a precondition, so an object replaced in between is refused, not merged.
    """
    ref = ChildRef.of(manifest)
    stamped = stamp(manifest)
    if existing is UNREAD:
        existing = await kube.get(ref.kind, ref.namespace, ref.name, cached=True)
    if existing is None:
        created = await kube.create(stamped)
        if created is not None:
            return Applied(created, created=True)
        existing = await kube.get(ref.kind, ref.namespace, ref.name)  # created in between: by whom?
        if existing is None:
            raise KubeError(409, "Conflict", f"{ref.kind.describe(ref.namespace, ref.name)} was created and "
                                             "deleted while the operator was creating it")
    assert isinstance(existing, dict)
    if not owner.owns(existing):
        raise NotOwned(ref.kind, ref.namespace, ref.name, owner_of(existing))
    if contains(existing, stamped):
        return Applied(existing, created=False)
    if "managedFields" not in existing["metadata"]:  # a watch cache's copy: the apply needs who owns which field
        fresh = await kube.get(ref.kind, ref.namespace, ref.name)
        if fresh is not None:
            fresh["metadata"].setdefault("managedFields", [])
        return await ensure(kube, owner, manifest, fresh)
    uid = existing["metadata"]["uid"]
    await _adopt_created_fields(kube, ref, existing)
    return await kube.apply({**stamped, "metadata": {**stamped["metadata"], "uid": uid}})


async def _adopt_created_fields(kube: Kube, ref: ChildRef, existing: dict) -> None:
    """Before the first apply to a child we created: record the fields the create set as applied by us.

    The API server files the fields of a create under an `Update` entry of its field manager, and an apply
    removes only fields that its own `Apply` entry holds: a field set at creation and later dropped from the
    manifest (an env variable, a schedule, a Secret key) would stay forever. Turning the entry into an `Apply`
    entry (a JSON patch, guarded by the resourceVersion that was read) makes later applies prune it."""
    managed = upgraded_managed_fields(existing["metadata"].get("managedFields") or [], FIELD_MANAGER)
    if managed is None:
        return
    await kube.json_patch(ref.kind, ref.namespace, ref.name, [
        {"op": "test", "path": "/metadata/resourceVersion", "value": existing["metadata"]["resourceVersion"]},
        {"op": "replace", "path": "/metadata/managedFields", "value": managed},
    ])


def upgraded_managed_fields(entries: list[dict], manager: str) -> list[dict] | None:
    """`entries` with `manager`'s Update entry of the main resource merged into its Apply entry (made one if
    there is none); None when there is nothing to change."""
    updates = [e for e in entries if e.get("manager") == manager and e.get("operation") == "Update"
               and not e.get("subresource")]
    if not updates:
        return None
    applied = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"
                    and not e.get("subresource")), None)
    fields: dict = dict((applied or {}).get("fieldsV1") or {})
    for entry in updates:
        fields = _union(fields, entry.get("fieldsV1") or {})
    merged = {**(applied or updates[0]), "operation": "Apply", "fieldsV1": fields}
    rest = [e for e in entries if e is not applied and not any(e is u for u in updates)]
    return [*rest, merged]


def _union(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = _union(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else \
            out.get(key, value)
    return out


async def remove(kube: Kube, owner: Owner, kind: Kind, namespace: str, name: str) -> bool:
    """Delete the child if it exists and is ours (that very object: uid precondition). True if deleted."""
    existing = await kube.get(kind, namespace, name)
    if existing is None or not owner.owns(existing):
        return False
    return await kube.delete(kind, namespace, name, uid=existing["metadata"]["uid"])
