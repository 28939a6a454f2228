"""A ModelStore's grants, kept equal to its spec.access: which namespaces may read or write models they do not own.

The operator manages a grant (model, namespace) while spec.access names it; the status lists those, so that one
taken out of spec.access is revoked in the store, while grants an administrator made by hand through the store's
API for other pairs are left alone.
"""

from __future__ import annotations

import logging

from ..api.modelstore import GrantStatus
from ..stores import StoreRef
from . import Context
from .failures import EXPECTED_FAILURES

log = logging.getLogger(__name__)


async def sync_grants(ctx: Context, store: StoreRef, previous: list[dict] | None) -> list[GrantStatus] | None:
    """Grant what spec.access says and revoke what it no longer says; returns the grants now managed, or None
    when the store could not be told (a warning Event; the next pass tries again)."""
    if not store.grants and not previous:
        return None  # nothing to keep: no call to the store
    try:
        return await _sync(ctx, store, previous)
    except EXPECTED_FAILURES as error:
        log.warning("grants not applied", extra={"store": store.describe(), "error": str(error)})
        ctx.emit("Warning", "GrantsNotApplied", f"Could not apply spec.access to {store.describe()} yet: {error}")
        return None


async def _sync(ctx: Context, store: StoreRef, previous: list[dict] | None) -> list[GrantStatus]:
    admin = await ctx.stores.admin(store)
    actual = {(entry["model"], namespace): tuple(sorted(rights))
              for entry in await admin.ownership() for namespace, rights in (entry.get("grants") or {}).items()}
    wanted = {(grant.model, grant.namespace): grant.rights for grant in store.grants}
    changed = []
    for (model, namespace), rights in wanted.items():
        if actual.get((model, namespace)) != rights:
            await admin.grant(model, namespace, rights)
            changed.append(f"granted {'+'.join(rights)} on {model} to {namespace}")
    for entry in previous or []:
        key = (entry.get("model"), entry.get("namespace"))
        if key not in wanted and key in actual:
            await admin.revoke_grant(*key)
            changed.append(f"revoked the grant on {key[0]} to {key[1]}")
    if changed:
        ctx.emit("Normal", "GrantsChanged", f"{store.describe()}: {'; '.join(changed)}")
    return [GrantStatus(model=model, namespace=namespace, rights=list(rights))
            for (model, namespace), rights in wanted.items()]
