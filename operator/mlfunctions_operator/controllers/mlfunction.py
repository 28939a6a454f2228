"""Reconciling an MLFunction: its ServiceAccount, Role, RoleBinding, credential Secret and OpenFaaS Function in the
function namespace, the default ModelStore if it is missing, and the MLFunction's status. Deleting one: revoking
its credential and removing those children (the finalizer's job, since they live in another namespace)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..api import FunctionRef, MLFunctionSpec
from ..builders import credentials, rbac
from ..builders.function import build_function
from ..builders.mlfunction_status import build_mlfunction_status, model_unknown, model_verdict
from ..builders.status import ConditionValue, Verdict, function_verdict, now_rfc3339, observe_function
from ..children import NotOwned, ensure, remove
from ..kube import FUNCTION, MODELSTORE, ROLE, ROLE_BINDING, SECRET, SERVICE_ACCOUNT, Applied
from ..naming import LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY, FunctionNames, Owner, owner_of
from ..store_client import Forbidden, StoreClient, Unauthorized, Unavailable
from ..stores import StoreProblem, StoreRef, parse_store
from . import Context, Result
from .failures import EXPECTED_FAILURES, parse_spec, verdict_for

KIND = "MLFunction"


def owner_of_body(body: dict) -> Owner:
    meta = body["metadata"]
    return Owner(KIND, meta["namespace"], meta["name"], meta["uid"])


@dataclass
class _Progress:
    """What one reconcile learned, for the status."""

    store: StoreRef | None = None
    function: dict | None = None
    model_version: int | None = None
    model_condition: ConditionValue | None = None


async def reconcile(ctx: Context, body: dict) -> Result:
    owner = owner_of_body(body)
    names = FunctionNames.for_mlfunction(owner.namespace, owner.name)
    progress = _Progress()
    spec = None
    try:
        spec = parse_spec(MLFunctionSpec, body)
        verdict = await _reconcile(ctx, owner, names, spec, progress)
    except Exception as error:  # noqa: BLE001 - every known failure becomes a verdict; verdict_for re-raises the rest
        verdict = verdict_for(error, progress.store)
    status = build_mlfunction_status(
        body, verdict, now_rfc3339(), spec=spec, function=progress.function,
        function_ref=FunctionRef(name=names.function, namespace=ctx.config.function_namespace),
        gateway_url=ctx.config.gateway_url, model_version=progress.model_version,
        model_condition=progress.model_condition)
    observation = observe_function(progress.function) if progress.function is not None else None
    return Result(status=status, verdict=verdict, function=observation)


async def _reconcile(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec,
                     progress: _Progress) -> Verdict:
    fn_ns = ctx.config.function_namespace
    progress.store = store = await _store(ctx, spec)
    # Independent children go in parallel: the latency of a new MLFunction is that of its longest chain.
    _, (credential, issued), applied = await _gather(
        _ensure_rbac(ctx, owner, names),
        _credential(ctx, owner, names, spec, store),
        _apply_function(ctx, owner, names, spec, store, progress),
    )
    _announce(ctx, spec, store, f"Function {fn_ns}/{names.function}", applied.created, credential if issued else None)
    verdict = function_verdict(f"{fn_ns}/{names.function}", observe_function(applied.obj))
    return await _check_model(ctx, owner, names, spec, store, credential, verdict, progress)


def _announce(ctx: Context, spec: MLFunctionSpec, store: StoreRef, function: str, created: bool,
              issued: credentials.StoredCredential | None) -> None:
    """One Event for what this pass created (a new MLFunction gets one, not two)."""
    token = None
    if issued:
        rights = "+".join(credentials.token_scope(spec.model.name, spec.task).rights)
        token = f"model-store token {issued.token_id} ({rights} on model {spec.model.name}) from {store.describe()}"
    if created and token:
        ctx.emit("Normal", "Created", f"Created {function} and issued {token}")
    elif created:
        ctx.emit("Normal", "FunctionCreated", f"Created {function}")
    elif token:
        ctx.emit("Normal", "CredentialIssued", f"Issued {token}")


async def _gather(*steps):
    """Run steps concurrently; wait for all of them, then raise the first failure (none is left running)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def _apply_function(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec, store: StoreRef,
                          progress: _Progress) -> Applied:
    """The Function, noted as soon as it is applied: when a step beside it fails, the status still says where it
    is, and the loop knows the watch event of this apply for the echo it is (no extra pass)."""
    applied = await ensure(ctx.kube, owner, build_function(owner, spec, names, ctx.config, store.url))
    progress.function = applied.obj
    return applied


async def _ensure_rbac(ctx: Context, owner: Owner, names: FunctionNames) -> None:
    fn_ns = ctx.config.function_namespace
    await _gather(
        ensure(ctx.kube, owner, rbac.build_service_account(owner, names, fn_ns)),
        ensure(ctx.kube, owner, rbac.build_role(owner, names, fn_ns)),
    )
    # After its Role: binding a Role that does not exist yet fails the API server's escalation check.
    await ensure(ctx.kube, owner, rbac.build_role_binding(owner, names, fn_ns))


async def _store(ctx: Context, spec: MLFunctionSpec) -> StoreRef:
    name = spec.model_store or ctx.config.default_model_store
    namespace = ctx.config.operator_namespace
    obj = await ctx.store_object(name, namespace)
    if obj is not None:
        return parse_store(obj)
    if name == ctx.config.default_model_store and ctx.config.create_default_model_store:
        created = await ctx.kube.create({
            "apiVersion": MODELSTORE.api_version, "kind": MODELSTORE.kind,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PART_OF: "mlfunctions"}},
            "spec": {},
        })
        if created:
            ctx.emit("Normal", "ModelStoreCreated", f"Created the default ModelStore {namespace}/{name}")
        raise StoreProblem("ModelStoreNotReady", f"ModelStore {namespace}/{name} was just created; waiting for "
                                                 "it to start", stalled=False)
    field = "spec.modelStore" if spec.model_store else "the operator's default store"
    raise StoreProblem("ModelStoreNotFound", f"{field}: ModelStore {namespace}/{name} not found; create it or "
                                             "name an existing one", stalled=True)


async def _credential(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec, store: StoreRef,
                      *, reissue: bool = False) -> tuple[credentials.StoredCredential, bool]:
    """The function's token, and whether it was just issued: kept while it fits (store, model, task, owner),
    otherwise issued anew, stored, and the one it replaces revoked. A token issued but never stored (the operator
    died in between) is revoked by the ModelStore's sweep of unreferenced tokens."""
    fn_ns = ctx.config.function_namespace
    secret = await ctx.kube.get(SECRET, fn_ns, names.credential_secret)
    if secret is not None and not owner.owns(secret):
        raise NotOwned(SECRET, fn_ns, names.credential_secret, owner_of(secret))
    stored = credentials.read_credential(secret)
    scope = credentials.token_scope(spec.model.name, spec.task)
    wanted = credentials.fingerprint(store.url, scope, owner)
    if stored and stored.fingerprint == wanted and not reissue:
        await ensure(ctx.kube, owner, credentials.build_credential_secret(owner, names, fn_ns, store.name, stored))
        return stored, False
    admin = await ctx.stores.admin(store)
    issued = await admin.create_token(scope.models, scope.rights, credentials.token_description(owner))
    fresh = credentials.StoredCredential(token=issued.token, token_id=issued.id, fingerprint=wanted)
    await ensure(ctx.kube, owner, credentials.build_credential_secret(owner, names, fn_ns, store.name, fresh))
    if stored:
        old_store = credentials.store_of(secret) or store.name
        await _revoke_replaced(ctx, stored.token_id, old_store, store, admin)
    return fresh, True


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


async def _check_model(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec, store: StoreRef,
                       credential: credentials.StoredCredential, verdict: Verdict, progress: _Progress) -> Verdict:
    """Look the model up with the function's own token: proves the credential works (a token revoked by hand is
    replaced) and finds the version in use."""
    wanted = spec.model.version or "latest"
    try:
        try:
            found = await ctx.stores.with_token(store, credential.token).get_version(spec.model.name, wanted)
        except (Unauthorized, Forbidden):
            ctx.emit("Warning", "CredentialRejected", f"{store.describe()} rejected token {credential.token_id}; "
                                                      "issuing a new one")
            credential, _ = await _credential(ctx, owner, names, spec, store, reissue=True)
            ctx.emit("Normal", "CredentialIssued", f"Issued model-store token {credential.token_id} to replace "
                                                   "the rejected one")
            found = await ctx.stores.with_token(store, credential.token).get_version(spec.model.name, wanted)
    except Unavailable as error:
        verdict, progress.model_condition = model_unknown(verdict, str(error))
        return verdict
    progress.model_version = found.version if found else None
    verdict, progress.model_condition = model_verdict(spec, store.describe(), verdict, progress.model_version)
    return verdict


# -- deletion ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cleanup:
    """What deleting an MLFunction did; `pending` names what could not be done yet (retry), if anything."""

    revoked: list[str]
    pending: str | None


async def finalize(ctx: Context, body: dict, give_up_revoking: bool) -> Cleanup:
    """Revoke the credential, then delete the children in the function namespace (only those we own).

    While the store cannot be reached the cleanup is retried; once `give_up_revoking` is set (the caller has
    retried long enough) the children are deleted anyway and a warning names the token left to revoke by hand.
    """
    owner = owner_of_body(body)
    names = FunctionNames.for_mlfunction(owner.namespace, owner.name)
    fn_ns = ctx.config.function_namespace
    secret = await ctx.kube.get(SECRET, fn_ns, names.credential_secret)
    stored = credentials.read_credential(secret) if secret is not None and owner.owns(secret) else None
    revoked: list[str] = []
    store_name = credentials.store_of(secret)
    if stored and store_name:
        try:
            if await _revoke(ctx, store_name, stored.token_id):
                revoked.append(stored.token_id)
        except EXPECTED_FAILURES as error:
            if not give_up_revoking:
                return Cleanup(revoked=[], pending=f"revoking model-store token {stored.token_id}: {error}")
            ctx.emit("Warning", "RevocationFailed", f"Gave up revoking model-store token {stored.token_id} in "
                                                    f"ModelStore {store_name}: {error}; revoke it by hand")
    for kind, name in ((FUNCTION, names.function), (ROLE_BINDING, names.role_binding), (ROLE, names.role),
                       (SERVICE_ACCOUNT, names.service_account), (SECRET, names.credential_secret)):
        await remove(ctx.kube, owner, kind, fn_ns, name)
    return Cleanup(revoked=revoked, pending=None)


async def _revoke(ctx: Context, store_name: str, token_id: str) -> bool:
    obj = await ctx.store_object(store_name, ctx.config.operator_namespace)
    if obj is None:
        return False  # the store is gone, and its tokens with it
    await (await ctx.stores.admin(parse_store(obj))).revoke_token(token_id)
    return True
