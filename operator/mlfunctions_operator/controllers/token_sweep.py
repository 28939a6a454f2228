"""Revoking the model-store tokens the operator issued that no credential Secret holds any more: issued by a
reconcile that died before storing it, or left by an MLFunction whose finalizer was released by hand.

Every token names its MLFunction in its description, so the Secret that should hold it is known by name: the sweep
reads those Secrets one by one (the operator may `get` Secrets, never `list` them: a list returns every Secret's
data). A Function not yet moved to its new name keeps its credential under the old name; that one counts too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from ..builders import credentials
from ..kube import SECRET
from ..naming import FunctionNames, Owner, function_name, legacy_function_name
from ..stores import StoreRef
from . import Context
from .failures import EXPECTED_FAILURES

log = logging.getLogger(__name__)
READS_AT_ONCE = 16
_MLFUNCTION = f"{credentials.TOKEN_DESCRIPTION_PREFIX}MLFunction "


async def sweep_unreferenced_tokens(ctx: Context, store: StoreRef) -> list[str]:
    """Revoke this store's unreferenced tokens; their ids. Only tokens older than the grace period are candidates,
    so a token being stored right now is never touched. Best effort: a failure leaves them for the next sweep."""
    try:
        admin = await ctx.stores.admin(store)
        now = datetime.now(UTC)
        candidates = {t["id"]: t["description"] for t in await admin.list_tokens()
                      if t.get("description", "").startswith(_MLFUNCTION) and not t.get("revoked")
                      and _age_seconds(t.get("created_at"), now) > ctx.config.orphan_token_grace_seconds}
        if not candidates:
            return []
        held = await _held(ctx, store, candidates.values())
        orphans = [token_id for token_id in candidates if token_id not in held]
        for token_id in orphans:
            await admin.revoke_token(token_id)
    except EXPECTED_FAILURES as error:
        log.warning("token sweep failed", extra={"store": store.describe(), "error": str(error)})
        return []
    if orphans:
        ctx.emit("Normal", "TokensRevoked", f"Revoked {len(orphans)} model-store token(s) no credential holds: "
                                            f"{', '.join(orphans)}")
    return orphans


async def _held(ctx: Context, store: StoreRef, descriptions) -> set[str]:
    """The ids of the tokens from `store` that the credential Secrets of the described MLFunctions hold."""
    # credential Secret name -> the MLFunctions it may belong to (old names were not unique: a-b/c and a/b-c)
    places: dict[str, list[Owner]] = {}
    for description in descriptions:
        namespace, _, name = description.removeprefix(_MLFUNCTION).partition("/")
        if namespace and name:
            owner = Owner("MLFunction", namespace, name, uid="")
            for function in (function_name(namespace, name), legacy_function_name(namespace, name)):
                places.setdefault(FunctionNames.for_function(function).credential_secret, []).append(owner)
    limit = asyncio.Semaphore(READS_AT_ONCE)

    async def held_by(secret_name: str, owners: list[Owner]) -> str | None:
        async with limit:
            secret = await ctx.kube.get(SECRET, ctx.config.function_namespace, secret_name, cached=True)
        ours = secret is not None and any(owner.owns(secret) for owner in owners)
        stored = credentials.read_credential(secret) if ours else None
        return stored.token_id if stored and credentials.store_of(secret) == store.name else None

    found = await asyncio.gather(*(held_by(name, owners) for name, owners in sorted(places.items())))
    return {token_id for token_id in found if token_id}


def _age_seconds(timestamp: str | None, now: datetime) -> float:
    try:
        created = datetime.fromisoformat(timestamp or "")
    except ValueError:
        return 0.0
    return (now - (created if created.tzinfo else created.replace(tzinfo=UTC))).total_seconds()
