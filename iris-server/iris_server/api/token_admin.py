"""/v1/tokens: minting, listing and revoking scoped tokens (admin only)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from .. import tenancy, tokens
from ..auth import require_admin
from ..names import DNS_LABEL_PATTERN
from ..ownership import Ownership
from ..records import Missing, TokenRecord, now
from ..schemas import IssuedTokenOut, TokenIn, TokenList
from ..tokens import Right
from .params import Caller, errors, not_found, store_of

log = logging.getLogger("iris_server")

router = APIRouter(prefix="/v1", tags=["tokens"])


@router.post("/tokens", status_code=201, response_model=IssuedTokenOut, responses=errors(403))
def create_token(request: Request, body: TokenIn, caller: Caller):
    """Mint a scoped token (admin only). The secret is in this answer and nowhere else, ever.

    A token for a namespace is refused (403 naming the model and its owner, and no token is minted) when the
    namespace may not have one of its rights on one of the models it names exactly (globs are judged at each
    request instead)."""
    require_admin(caller)
    store = store_of(request)
    models = list(dict.fromkeys(body.models))
    rights = sorted(set(body.rights))
    if body.namespace is not None:
        _check_tenancy(store.ownership, body.namespace, models, rights)
    minted = tokens.mint()
    record = TokenRecord(
        id=minted.id,
        secret_sha256=minted.secret_sha256,
        models=models,
        rights=rights,
        description=body.description,
        created_at=now(),
        revoked_at=None,
        namespace=body.namespace,
        metadata=dict(body.metadata),
    )
    store.catalog.add_token(record)
    log.info(
        "token created",
        extra={"token_id": record.id, "namespace": record.namespace, "models": models, "rights": rights},
    )
    return {**record.public(), "token": minted.token}


def _check_tenancy(ownership: Ownership, namespace: str, models: list[str], rights: list[str]) -> None:
    for model in models:
        if "*" in model or "?" in model:
            continue
        access = ownership.access(model)
        for right in rights:
            denial = tenancy.check(namespace, Right(right), access)
            if denial is not None:
                raise tenancy.Denied(denial)


@router.get("/tokens", response_model=TokenList, responses=errors(403))
async def list_tokens(
    request: Request,
    caller: Caller,
    namespace: Annotated[
        str | None, Query(pattern=DNS_LABEL_PATTERN, max_length=63, description="only tokens acting for it")
    ] = None,
):
    require_admin(caller)
    return {"tokens": [record.public() for record in store_of(request).catalog.list_tokens(namespace)]}


@router.delete("/tokens/{token_id}", status_code=204, responses=errors(403, 404))
def revoke_token(request: Request, token_id: Annotated[str, Path(pattern="^[0-9a-f]{16}$")], caller: Caller):
    """Revoke a token: effective for the very next request. Revoking twice is not an error."""
    require_admin(caller)
    try:
        store_of(request).catalog.revoke_token(token_id)
    except Missing as error:
        raise not_found(error) from error
    log.info("token revoked", extra={"token_id": token_id})
    return Response(status_code=204)
