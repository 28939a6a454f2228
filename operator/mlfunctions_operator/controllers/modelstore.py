"""Reconciling a ModelStore: for our own store the admin Secret (created once), PVC, Service and Deployment, with
Ready following the Deployment; for an external store only a check that it answers and accepts its admin token."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from ..api import ModelStoreSpec
from ..builders import credentials
from ..builders import modelstore as builders
from ..builders.modelstore_status import build_modelstore_status, deployment_verdict, reachable_verdict
from ..builders.status import Verdict, now_rfc3339
from ..children import NotOwned, ensure
from ..kube import SECRET
from ..naming import LABEL_MANAGED_BY, LABEL_OWNER_KIND, MANAGED_BY, Owner, StoreNames, owner_of
from ..stores import StoreRef, store_ref
from . import Context, Result
from .failures import EXPECTED_FAILURES, parse_spec, verdict_for

log = logging.getLogger(__name__)
KIND = "ModelStore"


async def reconcile(ctx: Context, body: dict) -> Result:
    meta = body["metadata"]
    owner = Owner(KIND, meta["namespace"], meta["name"], meta["uid"])
    store = None
    try:
        spec = parse_spec(ModelStoreSpec, body)
        store = store_ref(owner.name, owner.namespace, spec)
        if spec.external:
            verdict = await _check_external(ctx, store)
        else:
            verdict = await _reconcile_own(ctx, owner, spec)
        if verdict.ready and verdict.reason != "Stopped":  # a stopped store has nobody to answer the sweep
            await sweep_unreferenced_tokens(ctx, store)
    except Exception as error:  # noqa: BLE001 - every known failure becomes a verdict; verdict_for re-raises the rest
        verdict = verdict_for(error, store, store_itself=True)
    status = build_modelstore_status(body, verdict, now_rfc3339(), url=store.url if store else None,
                                     admin_token_secret=store.admin_secret if store else None)
    return Result(status=status, verdict=verdict)


async def _check_external(ctx: Context, store: StoreRef) -> Verdict:
    admin = await ctx.stores.admin(store)
    await admin.list_tokens()  # an admin-only call: checks reachability and the admin token at once
    return reachable_verdict(store.url)


async def _reconcile_own(ctx: Context, owner: Owner, spec: ModelStoreSpec) -> Verdict:
    names = StoreNames.for_store(owner.name)
    await _ensure_admin_secret(ctx, owner, names)
    await ensure(ctx.kube, owner, builders.build_claim(owner, names, spec))
    await ensure(ctx.kube, owner, builders.build_service(owner, names))
    applied = await ensure(ctx.kube, owner, builders.build_deployment(owner, names, spec,
                                                                     ctx.config.iris_server_image))
    if applied.created:
        ctx.emit("Normal", "DeploymentCreated", f"Created Deployment {owner.namespace}/{names.deployment}")
    return deployment_verdict(applied.obj, spec.replicas)


async def _ensure_admin_secret(ctx: Context, owner: Owner, names: StoreNames) -> None:
    """The admin token is generated once. An existing Secret is never rewritten (only checked to be ours and to
    hold a token): replacing it would lock every issued credential out of revocation."""
    created = await ctx.kube.create(builders.build_admin_secret(owner, names, secrets.token_urlsafe(32)))
    if created is not None:
        ctx.emit("Normal", "AdminSecretCreated", f"Generated the admin token in Secret {owner.namespace}/"
                                                 f"{names.admin_secret}")
        return
    existing = await ctx.kube.get(SECRET, owner.namespace, names.admin_secret)
    if existing is not None and not owner.owns(existing):
        raise NotOwned(SECRET, owner.namespace, names.admin_secret, owner_of(existing))


async def sweep_unreferenced_tokens(ctx: Context, store: StoreRef) -> list[str]:
    """Revoke tokens this operator issued from this store that no credential Secret holds any more: issued by a
    reconcile that died before storing it, or left by an MLFunction whose finalizer was released by hand.

    Only tokens older than the grace period are candidates, so a token being stored right now is never touched.
    Best effort: a failure leaves the tokens for the next sweep.
    """
    try:
        admin = await ctx.stores.admin(store)
        now = datetime.now(UTC)
        candidates = [t["id"] for t in await admin.list_tokens()
                      if t.get("description", "").startswith(credentials.TOKEN_DESCRIPTION_PREFIX)
                      and not t.get("revoked") and _age_seconds(t.get("created_at"), now) >
                      ctx.config.orphan_token_grace_seconds]
        if not candidates:
            return []
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_OWNER_KIND}=MLFunction"
        held = {credentials.read_credential(s).token_id for s in
                await ctx.kube.list(SECRET, ctx.config.function_namespace, selector)
                if credentials.read_credential(s) and credentials.store_of(s) == store.name}
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


def _age_seconds(timestamp: str | None, now: datetime) -> float:
    try:
        created = datetime.fromisoformat(timestamp or "")
    except ValueError:
        return 0.0
    return (now - (created if created.tzinfo else created.replace(tzinfo=UTC))).total_seconds()
