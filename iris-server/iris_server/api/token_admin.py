"""/v1/tokens: minting, listing and revoking scoped tokens (admin only)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from .. import tokens
from ..auth import require_admin
from ..records import Missing, TokenRecord, now
from ..schemas import IssuedTokenOut, TokenIn, TokenList
from .params import Caller, errors, not_found, store_of

log = logging.getLogger("iris_server")

router = APIRouter(prefix="/v1", tags=["tokens"])


@router.post("/tokens", status_code=201, response_model=IssuedTokenOut, responses=errors(403))
def create_token(request: Request, body: TokenIn, caller: Caller):
    """Mint a scoped token (admin only). The secret is in this answer and nowhere else, ever."""
    require_admin(caller)
    minted = tokens.mint()
    record = TokenRecord(
        id=minted.id,
        secret_sha256=minted.secret_sha256,
        models=list(dict.fromkeys(body.models)),
        rights=sorted(set(body.rights)),
        description=body.description,
        created_at=now(),
        revoked_at=None,
    )
    store_of(request).catalog.add_token(record)
    log.info("token created", extra={"token_id": record.id, "models": record.models, "rights": record.rights})
    return {**record.public(), "token": minted.token}


@router.get("/tokens", response_model=TokenList, responses=errors(403))
async def list_tokens(request: Request, caller: Caller):
    require_admin(caller)
    return {"tokens": [record.public() for record in store_of(request).catalog.list_tokens()]}


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
