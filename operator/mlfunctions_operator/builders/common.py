"""Metadata shared by every child manifest."""

from __future__ import annotations

from ..naming import Owner


def metadata(owner: Owner, name: str, namespace: str, *, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> dict:
    """Child metadata: the owner's labels (the ownership check), plus an ownerReference when the child lives in
    the owner's namespace (garbage collection does the cleanup there; elsewhere the finalizer does)."""
    meta: dict = {"name": name, "namespace": namespace, "labels": {**owner.labels(), **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    if namespace == owner.namespace:
        meta["ownerReferences"] = [owner.reference()]
    return meta
