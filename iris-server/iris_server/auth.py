"""Request authentication (who is calling) and authorization (may they do this to that model): the token's
scope first (its globs and rights), then, for a token acting for a namespace, the model's owner and grants."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Connection

from . import tenancy, tokens
from .catalog import WriteGuard
from .errors import ApiError
from .ownership import Ownership
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
        namespace=record.namespace,
        metadata=tuple(sorted(record.metadata.items())),
    )


def authorize(principal: Principal, right: Right, model: str, ownership: Ownership) -> None:
    """403 unless the token's scope allows `right` on `model` and, for a namespaced token, tenancy does too.

    The scope is checked first and its refusal names nothing but the token: a token cannot learn whether a
    model outside its globs exists, or whose it is."""
    if not principal.may(right, model):
        raise ApiError(403, f"token {principal.id} has no {right.value} right on model {model!r}")
    if principal.namespace is not None:
        denial = tenancy.check(principal.namespace, right, ownership.access(model))
        if denial is not None:
            raise tenancy.Denied(denial)


def write_guard(principal: Principal, model: str, ownership: Ownership) -> WriteGuard:
    """The check an upload repeats inside the transaction that records its version: ownership may have
    changed while the body streamed in (a concurrent first upload by another namespace claimed the model).
    The first upload of a namespaced token to an unused model claims it, in that same transaction."""

    def guard(db: Connection) -> None:
        if principal.namespace is None:
            return
        access = ownership.access(model, db)
        denial = tenancy.check(principal.namespace, Right.WRITE, access)
        if denial is not None:
            raise tenancy.Denied(denial)
        if tenancy.claims(principal.namespace, access):
            ownership.record_claim(db, model, principal.namespace, principal.id)

    return guard


def require_admin(principal: Principal, what: str = "tokens") -> None:
    if not principal.admin:
        raise ApiError(403, f"only the admin token may manage {what}")
