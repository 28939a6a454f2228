"""Reconciling a ModelStore: for our own store the admin Secret (created once), PVC, Service and Deployment, with
Ready following the Deployment; for an external store only a check that it answers and accepts its admin token."""

from __future__ import annotations

import secrets

from iris_client import Forbidden, ModelStoreError, Unauthorized
from pydantic import ValidationError

from ..api import ModelStoreSpec
from ..builders import modelstore as builders
from ..builders.status import Verdict, merge_conditions, now_rfc3339, verdict_conditions
from ..children import NotOwned, ensure
from ..kube import SECRET, KubeError
from ..naming import Owner, StoreNames, owner_of
from ..stores import StoreClient, StoreProblem, StoreRef, admin_token, store_ref
from . import Context, Result

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
    except ValidationError as error:
        first = error.errors()[0]
        verdict = Verdict.stalled_on("InvalidSpec", ".".join(map(str, ("spec", *first["loc"]))) + f": {first['msg']}")
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
    return Result(status=status, verdict=verdict, retry=not verdict.ready and verdict.reason != "Stopped")


async def _check_external(ctx: Context, store: StoreRef) -> Verdict:
    admin = StoreClient(store.url, await admin_token(ctx.kube, store), ctx.config.store_timeout_seconds)
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


def deployment_verdict(deployment: dict, replicas: int) -> Verdict:
    name = f"Deployment {deployment['metadata']['namespace']}/{deployment['metadata']['name']}"
    if replicas == 0:
        return Verdict(ready=False, reason="Stopped", message="spec.replicas is 0: the store is stopped")
    status = deployment.get("status") or {}
    current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    available = status.get("availableReplicas", 0)
    if current and available >= replicas and status.get("updatedReplicas", 0) >= replicas:
        return Verdict(ready=True, reason="Available", message=f"{name} has {available} available replica(s)")
    return Verdict.waiting_for("DeploymentNotAvailable", f"waiting for {name} to become available "
                                                         f"({available}/{replicas} replicas available)")

