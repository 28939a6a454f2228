"""Removing an MLFunction's children: when it is deleted (the finalizer's job, since most of them live in another
namespace), and when its Function moves to a new name (earlier releases named it `<namespace>-<name>`).

Only objects that carry the MLFunction's ownership labels are deleted, each with its uid as a precondition; the
model-store token a removed credential Secret holds is revoked first. The invoke Secret in the MLFunction's own
namespace has an ownerReference: the garbage collector deletes it with the MLFunction.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..children import remove
from ..gateway_client import GatewayError
from ..kube import FUNCTION, ROLE, ROLE_BINDING, SECRET, SERVICE_ACCOUNT
from ..naming import FunctionNames, Owner
from . import Context, gateway_function
from .failures import EXPECTED_FAILURES
from .function_credentials import revoke_stored


@dataclass(frozen=True)
class Cleanup:
    """What deleting an MLFunction did; `pending` names what could not be done yet (retry), if anything."""

    revoked: list[str]
    pending: str | None


async def finalize(ctx: Context, owner: Owner, names: list[FunctionNames], give_up_revoking: bool) -> Cleanup:
    """Revoke the credentials, then delete the children in the function namespace (only those we own), under
    each of `names` (the current names, and the ones the status still names while a migration is unfinished).

    While a store cannot be reached the cleanup is retried; once `give_up_revoking` is set (the caller has
    retried long enough) the children are deleted anyway and a warning names the token left to revoke by hand.
    """
    revoked: list[str] = []
    for each in names:
        secret = await _owned_secret(ctx, owner, each)
        try:
            if token_id := await revoke_stored(ctx, secret):
                revoked.append(token_id)
        except EXPECTED_FAILURES as error:
            if not give_up_revoking:
                return Cleanup(revoked=revoked, pending=f"revoking the model-store token in Secret "
                                                        f"{ctx.config.function_namespace}/{each.credential_secret}:"
                                                        f" {error}")
            ctx.emit("Warning", "RevocationFailed", f"Gave up revoking the model-store token in Secret "
                                                    f"{each.credential_secret}: {error}; revoke it by hand")
        try:
            await _remove_all(ctx, owner, each)
        except GatewayError as error:  # gatewayAPI mode: retried with back-off until the gateway answers
            return Cleanup(revoked=revoked, pending=f"deleting function {each.function} through the gateway: "
                                                    f"{error}")
    return Cleanup(revoked=revoked, pending=None)


async def migrate(ctx: Context, owner: Owner, old: FunctionNames, new_function: str) -> None:
    """Remove the children under an earlier release's names, once the Function under `new_function` serves.
    A token that cannot be revoked now is left to the store's sweep (no credential Secret holds it any more)."""
    secret = await _owned_secret(ctx, owner, old)
    try:
        await revoke_stored(ctx, secret)
    except EXPECTED_FAILURES as error:
        ctx.emit("Warning", "RevocationFailed", f"Could not revoke the model-store token of the old Function "
                                                f"{old.function} yet: {error}; the store's sweep will")
    await _remove_all(ctx, owner, old)
    ctx.emit("Normal", "Migrated", f"Function {old.function} is now {new_function} (status.url changed); deleted "
                                   f"the old Function and its RBAC and credential")


async def _owned_secret(ctx: Context, owner: Owner, names: FunctionNames) -> dict | None:
    secret = await ctx.kube.get(SECRET, ctx.config.function_namespace, names.credential_secret)
    return secret if secret is not None and owner.owns(secret) else None


async def _remove_all(ctx: Context, owner: Owner, names: FunctionNames) -> None:
    fn_ns = ctx.config.function_namespace
    if ctx.config.gateway_mode:  # no Function object: the gateway deployed it
        await gateway_function.remove(ctx, owner, names.function)
    kinds = ((FUNCTION, names.function),) if not ctx.config.gateway_mode else ()
    for kind, name in (*kinds, (ROLE_BINDING, names.role_binding), (ROLE, names.role),
                       (SERVICE_ACCOUNT, names.service_account), (SECRET, names.credential_secret)):
        await remove(ctx.kube, owner, kind, fn_ns, name)
