"""Model ownership and grants (admin only): the operator claims a model for a namespace and shares it with
others.

    GET    /v1/ownership[?namespace=ns]                every owned, granted or existing model
    GET    /v1/models/{model}/owner                    its owner (null: nobody)
    PUT    /v1/models/{model}/owner {"namespace"}      claim: 201 new, 200 already its own, 409 another's
    DELETE /v1/models/{model}/owner                    release (grants stay)
    GET    /v1/models/{model}/grants
    PUT    /v1/models/{model}/grants/{namespace} {"rights": [...]}    set (replace) that namespace's rights
    DELETE /v1/models/{model}/grants/{namespace}
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ..auth import require_admin
from ..errors import ApiError
from ..names import DNS_LABEL_PATTERN
from ..records import Missing, Owned
from ..schemas import GrantIn, GrantList, OwnerIn, OwnerOut, OwnershipList
from .params import Caller, ModelName, NamespaceName, errors, not_found, store_of

log = logging.getLogger("iris_server")

router = APIRouter(prefix="/v1", tags=["ownership"])

_UNOWNED = {"owner": None, "claimed_at": None, "claimed_by": None}


@router.get("/ownership", response_model=OwnershipList, responses=errors(403))
async def list_ownership(
    request: Request,
    caller: Caller,
    namespace: Annotated[
        str | None,
        Query(pattern=DNS_LABEL_PATTERN, max_length=63, description="only what it owns or is granted"),
    ] = None,
):
    """Every model that exists, has an owner or has grants: what a migration or a reconcile starts from."""
    require_admin(caller, "ownership")
    return {"models": [entry.public() for entry in store_of(request).ownership.everything(namespace)]}


@router.get("/models/{model}/owner", response_model=OwnerOut, responses=errors(403))
async def get_owner(request: Request, model: ModelName, caller: Caller):
    require_admin(caller, "ownership")
    claim = store_of(request).ownership.describe(model).claim
    return claim.public() if claim else {"model": model, **_UNOWNED}


@router.put(
    "/models/{model}/owner",
    response_model=OwnerOut,
    status_code=201,
    responses={200: {"model": OwnerOut, "description": "the namespace already owned it"}, **errors(403, 409)},
)
def claim(request: Request, response: Response, model: ModelName, body: OwnerIn, caller: Caller):
    """Make a namespace the model's owner, whether or not the model has versions yet (claiming a model that
    has versions but no owner is how a store from before ownership is migrated). Another namespace's model is
    not taken over: 409 naming its owner (release it first to transfer it)."""
    require_admin(caller, "ownership")
    try:
        record, created = store_of(request).ownership.claim(model, body.namespace)
    except Owned as error:
        raise ApiError(
            409, str(error), code="owned", fields={"model": model, "owner": error.owner}
        ) from error
    if created:
        log.info("model claimed", extra={"model": model, "namespace": body.namespace})
    response.status_code = 201 if created else 200
    return record.public()


@router.delete("/models/{model}/owner", status_code=204, responses=errors(403, 404))
def release(request: Request, model: ModelName, caller: Caller):
    """Remove the model's owner. Its versions and grants stay; namespaced tokens of the former owner lose
    their access at their next request (unless a grant gives it)."""
    require_admin(caller, "ownership")
    try:
        record = store_of(request).ownership.release(model)
    except Missing as error:
        raise not_found(error) from error
    log.info("model released", extra={"model": model, "namespace": record.namespace})
    return Response(status_code=204)


@router.get("/models/{model}/grants", response_model=GrantList, responses=errors(403))
async def list_grants(request: Request, model: ModelName, caller: Caller):
    require_admin(caller, "ownership")
    return {"model": model, "grants": store_of(request).ownership.grants(model)}


@router.put("/models/{model}/grants/{namespace}", response_model=GrantList, responses=errors(403))
def grant(request: Request, model: ModelName, namespace: NamespaceName, body: GrantIn, caller: Caller):
    """Let `namespace` do `rights` to the model (replacing what it was granted before)."""
    require_admin(caller, "ownership")
    grants = store_of(request).ownership.grant(model, namespace, body.rights)
    log.info("model granted", extra={"model": model, "namespace": namespace, "rights": grants[namespace]})
    return {"model": model, "grants": grants}


@router.delete("/models/{model}/grants/{namespace}", status_code=204, responses=errors(403, 404))
def revoke_grant(request: Request, model: ModelName, namespace: NamespaceName, caller: Caller):
    """Take a grant back: effective for the namespace's very next request."""
    require_admin(caller, "ownership")
    try:
        store_of(request).ownership.revoke_grant(model, namespace)
    except Missing as error:
        raise not_found(error) from error
    log.info("grant revoked", extra={"model": model, "namespace": namespace})
    return Response(status_code=204)
