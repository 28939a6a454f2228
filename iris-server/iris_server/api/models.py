"""/v1/models and /v1/models/{model}: the models a caller may read; /v1/whoami: the caller's own scope."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .. import tenancy
from ..auth import authorize
from ..records import Missing
from ..schemas import ModelList, ModelOut, WhoAmI
from ..tokens import Right
from .params import Caller, ModelName, errors, not_found, store_of

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelList, responses=errors())
async def list_models(request: Request, caller: Caller):
    """Models the caller may read (its scope and, for a namespaced token, ownership and grants), with their
    newest version, aliases and owner."""
    store = store_of(request)
    summaries = [s for s in store.catalog.list_models() if caller.may(Right.READ, s.name)]
    if caller.namespace is not None:
        access = store.ownership.access_map(s.name for s in summaries)
        summaries = [
            s for s in summaries if tenancy.check(caller.namespace, Right.READ, access[s.name]) is None
        ]
    return {"models": [s.public() for s in summaries]}


@router.get("/models/{model}", response_model=ModelOut, responses=errors(403, 404))
async def get_model(request: Request, model: ModelName, caller: Caller):
    authorize(caller, Right.READ, model, store_of(request).ownership)
    try:
        return store_of(request).catalog.get_model(model).public()
    except Missing as error:
        raise not_found(error) from error


@router.get("/whoami", response_model=WhoAmI, responses=errors())
async def whoami(caller: Caller):
    """The calling token's id, namespace and scope: lets a deployer check a credential without touching any
    model."""
    return {
        "id": caller.id,
        "admin": caller.admin,
        "namespace": caller.namespace,
        "models": list(caller.models),
        "rights": sorted(caller.rights),
        "metadata": dict(caller.metadata),
    }
