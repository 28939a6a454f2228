"""An MLFunction's credentials: its model-store token (issued, kept, replaced, revoked) and, for a train function,
the token its callers present (Secret `<name>-invoke` in the MLFunction's namespace)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from ..api import MLFunctionSpec
from ..builders import credentials
from ..children import NotOwned, ensure
from ..kube import SECRET
from ..naming import FunctionNames, Owner, invoke_secret_name, owner_of
from ..store_client import IssuedToken, ModelStoreError, StoreClient
from ..stores import StoreRef, parse_store
from . import Context
from .failures import EXPECTED_FAILURES
from .model_access import claim, refusal

# What a train function's credential Secret carries besides its token (None for a predict function).
InvokeDigest = Callable[[], Awaitable[str | None]]


async def invoke_digest(ctx: Context, owner: Owner, existing: dict | None) -> str:
    """The SHA-256 of the train function's invoke token: the one in the MLFunction's invoke Secret, made now if
    there is none. The Secret is created once and never rewritten (deleting it makes a new token)."""
    name = invoke_secret_name(owner.name)
    secret = existing
    if secret is None:
        secret = await ctx.kube.create(credentials.build_invoke_secret(owner, secrets.token_urlsafe(32)))
        if secret is not None:
            ctx.emit("Normal", "InvokeCredentialCreated", f"Created Secret {owner.namespace}/{name}: the token "
                                                          "callers of the train function present")
        else:  # created in between: by whom?
            secret = await ctx.kube.get(SECRET, owner.namespace, name)
            if secret is None or not owner.owns(secret):
                raise NotOwned(SECRET, owner.namespace, name, owner_of(secret or {}))
    return credentials.invoke_digest(credentials.read_invoke_token(secret))


async def store_credential(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec,
                           store: StoreRef, secret: dict | None, digest: InvokeDigest, *, reissue: bool = False
                           ) -> tuple[credentials.StoredCredential, bool]:
    """The function's token, and whether it was just issued: kept while it fits (store, model, task, owner),
    otherwise issued anew (after claiming the model for the namespace where model_access.claim says so), stored,
    and the one it replaces
    revoked. `secret` is the credential Secret as check_owned() read it (read again with `reissue`); `digest`
    gives what the Secret also carries for a train function, asked for only once the store has said yes. A token issued but never stored (the
    operator died in between, or a foreign Secret appeared meanwhile) is revoked at once if possible, else by the
    ModelStore's sweep of unreferenced tokens."""
    fn_ns = ctx.config.function_namespace
    if reissue:  # later in a pass that may have written it already
        secret = await ctx.kube.get(SECRET, fn_ns, names.credential_secret)
        if secret is not None and not owner.owns(secret):
            raise NotOwned(SECRET, fn_ns, names.credential_secret, owner_of(secret))
    stored = credentials.read_credential(secret)
    scope = credentials.token_scope(spec.model.name, spec.task, owner.namespace)
    wanted = credentials.fingerprint(store.url, scope, owner)

    async def manifest(credential: credentials.StoredCredential) -> dict:
        return credentials.build_credential_secret(owner, names, fn_ns, store.name, credential, await digest())

    if stored and stored.fingerprint == wanted and not reissue:
        await ensure(ctx.kube, owner, await manifest(stored), existing=secret)
        return stored, False
    admin = await ctx.stores.admin(store)
    issued = await _mint(ctx, admin, owner, spec, store, scope)
    fresh = credentials.StoredCredential(token=issued.token, token_id=issued.id, fingerprint=wanted)
    try:
        await ensure(ctx.kube, owner, await manifest(fresh), existing=secret)
    except Exception:
        await _revoke_quietly(ctx, admin, issued.id)  # never stored: nobody may hold it
        raise
    if stored:
        old_store = credentials.store_of(secret) or store.name
        await _revoke_replaced(ctx, stored.token_id, old_store, store, admin)
    return fresh, True


async def _mint(ctx: Context, admin: StoreClient, owner: Owner, spec: MLFunctionSpec, store: StoreRef,
                scope: credentials.TokenScope) -> IssuedToken:
    """A token for the namespace; the store refuses (ModelNotOwned) when the namespace may not use the model. A
    train function first claims a model nobody owns; a predict function claims one only when the store refused
    because the model has versions but no owner, and all of them were written for its namespace."""
    model, namespace = spec.model.name, owner.namespace

    async def mint() -> IssuedToken:
        return await admin.create_token(scope.models, scope.rights, credentials.token_description(owner),
                                        namespace=scope.namespace, metadata=credentials.token_metadata(owner))

    training = spec.task == "train"
    claimed = await claim(admin, model, namespace, store, ctx.emit, unused_too=True) if training else None
    try:
        return await mint()
    except ModelStoreError as error:
        denied = refusal(error, model, store, namespace, spec.task, claimed.writers if claimed else None)
        if denied is None:
            raise
        if claimed is None and denied.owner is None:  # a store from before owners: perhaps the model is ours
            claimed = await claim(admin, model, namespace, store, ctx.emit, unused_too=False)
            if claimed.claimed:
                return await mint()
            denied = refusal(error, model, store, namespace, spec.task, claimed.writers)
        raise denied from None


async def _revoke_quietly(ctx: Context, admin: StoreClient, token_id: str) -> None:
    try:
        await admin.revoke_token(token_id)
    except EXPECTED_FAILURES as error:
        ctx.emit("Warning", "RevocationFailed", f"Could not revoke unstored model-store token {token_id} yet: "
                                                f"{error}")


async def _revoke_replaced(ctx: Context, token_id: str, store_name: str, current: StoreRef,
                           current_admin: StoreClient) -> None:
    """Revoke a replaced token, in whichever store issued it. Best effort: a failure is a warning Event, and the
    store's sweep of unreferenced tokens revokes it later."""
    try:
        if store_name == current.name:
            admin = current_admin
        else:
            obj = await ctx.store_object(store_name, ctx.config.operator_namespace)
            if obj is None:
                return  # that store is gone, and its tokens with it
            admin = await ctx.stores.admin(parse_store(obj))
        await admin.revoke_token(token_id)
        ctx.emit("Normal", "CredentialRevoked", f"Revoked replaced model-store token {token_id}")
    except EXPECTED_FAILURES as error:
        ctx.emit("Warning", "RevocationFailed", f"Could not revoke replaced model-store token {token_id} yet: "
                                                f"{error}")


async def revoke_stored(ctx: Context, secret: dict | None) -> str | None:
    """Revoke the token a credential Secret holds, in the store that issued it; its id, or None if there was
    none to revoke (no token, or the store is gone and its tokens with it). Raises EXPECTED_FAILURES."""
    stored = credentials.read_credential(secret)
    store_name = credentials.store_of(secret)
    if not stored or not store_name:
        return None
    obj = await ctx.store_object(store_name, ctx.config.operator_namespace)
    if obj is None:
        return None
    await (await ctx.stores.admin(parse_store(obj))).revoke_token(stored.token_id)
    return stored.token_id
