"""/v1/models/{model}/aliases: named pointers at versions (pinning and rollback)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..auth import authorize
from ..records import Missing
from ..errors import ApiError
from ..names import is_alias
from ..schemas import AliasIn, AliasList
from ..tokens import Right
from .params import AliasName, Caller, ModelName, errors, not_found, store_of

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models/{model}/aliases", response_model=AliasList, responses=errors(403, 404))
async def list_aliases(request: Request, model: ModelName, caller: Caller):
    authorize(caller, Right.READ, model, store_of(request).ownership)
    try:
        return {"aliases": store_of(request).catalog.aliases(model)}
    except Missing as error:
        raise not_found(error) from error


@router.put("/models/{model}/aliases/{alias}", response_model=AliasList, responses=errors(403, 404))
def set_alias(request: Request, model: ModelName, alias: AliasName, body: AliasIn, caller: Caller):
    """Point `alias` at a version (creating or moving it): pinning and rollback. Needs the alias right."""
    authorize(caller, Right.ALIAS, model, store_of(request).ownership)
    if not is_alias(alias):
        raise ApiError(
            422, f"alias must be a DNS label that is neither all digits nor 'latest'; got {alias!r}"
        )
    catalog = store_of(request).catalog
    try:
        catalog.set_alias(model, alias, body.version)
        return {"aliases": catalog.aliases(model)}
    except Missing as error:
        raise not_found(error) from error


@router.delete("/models/{model}/aliases/{alias}", status_code=204, responses=errors(403, 404))
def delete_alias(request: Request, model: ModelName, alias: AliasName, caller: Caller):
    authorize(caller, Right.ALIAS, model, store_of(request).ownership)
    try:
        store_of(request).catalog.delete_alias(model, alias)
    except Missing as error:
        raise not_found(error) from error
    return Response(status_code=204)
