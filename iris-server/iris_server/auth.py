"""Request authentication (who is calling) and authorization (may they do this to that model)."""

from __future__ import annotations

from fastapi import Request

from . import tokens
from .errors import ApiError
from .tokens import ADMIN, Principal, Right

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="iris"'}
# Compared against when the token id is unknown, so unknown ids and wrong secrets take the same time.
_NO_SUCH_SECRET = tokens.digest("no such token")


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's Principal, or 401. Also records it for the access log (its id only).

    Async on purpose: a sync dependency would cost every request a threadpool hop (see api/__init__.py).
    """
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise ApiError(401, "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    store = request.app.state.store
    if tokens.is_admin_token(presented, store.admin_sha256):
        principal = ADMIN
    else:
        principal = _scoped(store, presented)
    request.state.principal = principal
    return principal


def _scoped(store, presented: str) -> Principal:
    parts = tokens.split(presented)
    record = store.catalog.get_token(parts[0]) if parts else None
    secret_matches = tokens.same_secret(
        parts[1] if parts else presented, record.secret_sha256 if record else _NO_SUCH_SECRET
    )
    if record is None or not secret_matches or record.revoked_at is not None:
        raise ApiError(401, "the token is invalid or has been revoked", headers=_CHALLENGE)
    return Principal(
        id=record.id,
        description=record.description,
        models=tuple(record.models),
        rights=frozenset(record.rights),
    )


def authorize(principal: Principal, right: Right, model: str) -> None:
    if not principal.may(right, model):
        raise ApiError(403, f"token {principal.id} has no {right.value} right on model {model!r}")


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise ApiError(403, "only the admin token may manage tokens")
