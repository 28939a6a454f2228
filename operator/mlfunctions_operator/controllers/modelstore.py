"""Reconciling a ModelStore: for our own store the admin Secret (created once), PVC, Service and Deployment, with
Ready following the Deployment; for an external store only a check that it answers and accepts its admin token."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from iris_client import Forbidden, ModelStoreError, Unauthorized
from pydantic import ValidationError

from ..api import ModelStoreSpec
from ..builders import credentials
from ..builders import modelstore as builders
from ..builders.status import Verdict, merge_conditions, now_rfc3339, verdict_conditions
from ..children import NotOwned, ensure
from ..kube import SECRET, KubeError
from ..naming import LABEL_MANAGED_BY, LABEL_OWNER_KIND, MANAGED_BY, Owner, StoreNames, owner_of
from ..stores import StoreClient, StoreProblem, StoreRef, admin_token, store_ref
from . import Context, Result

log = logging.getLogger(__name__)
KIND = "ModelStore"


async def reconcile(ctx: Context, body: dict) -> Result:
    meta = body["metadata"]
    owner = Owner(KIND, meta["namespace"], meta["name"], meta["uid"])
    url = secret_name = None
    try:
        spec = ModelStoreSpec.model_validate(body.get("spec") or {})
        store = store_ref(owner.name, owner.namespace, spec)
        url, secret_name = store.url, store.admin_secret
        if spec.external:
            verdict = await _check_external(ctx, store)
        else:
            verdict = await _reconcile_own(ctx, owner, spec)
        if verdict.ready and verdict.reason != "Stopped":  # a stopped store has nobody to answer the sweep
            await sweep_unreferenced_tokens(ctx, store)
    except ValidationError as error:
        first = error.errors()[0]
        verdict = Verdict.stalled_on("InvalidSpec", ".".join(map(str, ("spec", *first["loc"]))) + f": {first['msg']}",
                                     retry=False)
    except NotOwned as error:
        verdict = Verdict.stalled_on("NotOwned", str(error))
    except StoreProblem as error:
        verdict = (Verdict.stalled_on if error.stalled else Verdict.waiting_for)(error.reason, error.message)
    except KubeError as error:
        verdict = (Verdict.stalled_on("ApplyFailed", str(error)) if error.status in (400, 403, 422)
                   else Verdict.waiting_for("APIError", str(error)))
    generation = meta.get("generation")
    status = {
        "observedGeneration": generation,
        "conditions": merge_conditions((body.get("status") or {}).get("conditions"), verdict_conditions(verdict),
                                       generation, now_rfc3339()),
        "url": url,
        "adminTokenSecret": secret_name,
    }
    return Result(status=status, verdict=verdict, retry=verdict.retry)


async def _check_external(ctx: Context, store: StoreRef) -> Verdict:
    admin = StoreClient(store.url, await admin_token(ctx.kube, store), ctx.config.store_timeout_seconds, keep=True)
    try:
        await admin.list_tokens()  # an admin-only call: checks reachability and the admin token at once
    except (Unauthorized, Forbidden) as error:
        return Verdict.stalled_on("AdminTokenRejected", f"{store.url} rejected the admin token in Secret "
                                                        f"{store.namespace}/{store.admin_secret}: {error}")
    except ModelStoreError as error:
        return Verdict.waiting_for("Unreachable", f"{store.url} is unavailable: {error}")
    return Verdict(ready=True, reason="Reachable", message=f"external iris-server at {store.url} answers and "
                                                           "accepts its admin token")


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
        admin = StoreClient(store.url, await admin_token(ctx.kube, store), ctx.config.store_timeout_seconds, keep=True)
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
    except (ModelStoreError, StoreProblem, KubeError) as error:
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


def deployment_verdict(deployment: dict, replicas: int) -> Verdict:
    name = f"Deployment {deployment['metadata']['namespace']}/{deployment['metadata']['name']}"
    if replicas == 0:
        # Off on purpose is a finished state, like a function scaled to zero: Ready, so that `kubectl wait`,
        # Flux and kstatus do not wait for replicas that were never asked for.
        return Verdict(ready=True, reason="Stopped", message="spec.replicas is 0: the store is stopped")
    status = deployment.get("status") or {}
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    available = status.get("availableReplicas", 0)
    if current and available >= replicas and status.get("updatedReplicas", 0) >= replicas:
        return Verdict(ready=True, reason="Available", message=f"{name} has {available} available replica(s)")
    # Polled with back-off: the operator does not watch Deployments (the chart grants it no list/watch on them).
    return Verdict.waiting_for("DeploymentNotAvailable", f"waiting for {name} to become available "
                                                         f"({available}/{replicas} replicas available)")

