"""Reconciling an MLFunction: its ServiceAccount, Role, RoleBinding, credential Secret and OpenFaaS Function in the
function namespace, the default ModelStore if it is missing, and the MLFunction's status. Deleting one: revoking
its credential and removing those children (the finalizer's job, since they live in another namespace)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from iris_client import Forbidden, ModelStoreError, ModelVersion, Unauthorized, Unavailable
from pydantic import ValidationError

from ..api import MLFunctionSpec
from ..builders import credentials, rbac
from ..builders.function import build_function
from ..builders.status import (
    MODEL_AVAILABLE,
    ConditionValue,
    Verdict,
    function_verdict,
    merge_conditions,
    now_rfc3339,
    observe_function,
    replicas_summary,
    verdict_conditions,
)
from ..children import NotOwned, ensure, remove
from ..kube import FUNCTION, MODELSTORE, ROLE, ROLE_BINDING, SECRET, SERVICE_ACCOUNT, KubeError
from ..naming import LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY, FunctionNames, Owner, owner_of
from ..stores import StoreClient, StoreProblem, StoreRef, admin_token, parse_store
from . import Context, Result

KIND = "MLFunction"


class Stop(Exception):
    """Ends a reconcile early with this verdict."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.message)
        self.verdict = verdict


def owner_of_body(body: dict) -> Owner:
    meta = body["metadata"]
    return Owner(KIND, meta["namespace"], meta["name"], meta["uid"])


def parse_spec(body: dict) -> MLFunctionSpec:
    try:
        return MLFunctionSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in ("spec", *first["loc"]))
        raise Stop(Verdict.stalled_on("InvalidSpec", f"{field}: {first['msg']}", retry=False)) from None


def _stop_for(error: Exception, store: StoreRef | None) -> Stop:
    """Translate a failure into the verdict the user sees."""
    if isinstance(error, Stop):
        return error
    if isinstance(error, NotOwned):
        return Stop(Verdict.stalled_on("NotOwned", str(error)))
    if isinstance(error, StoreProblem):
        if error.stalled:
            return Stop(Verdict.stalled_on(error.reason, error.message))
        return Stop(Verdict.waiting_for(error.reason, error.message))
    if isinstance(error, ModelStoreError):
        where = store.describe() + f" ({store.url})" if store else "the model store"
        if isinstance(error, (Unauthorized, Forbidden)):
            return Stop(Verdict.stalled_on("ModelStoreRejectedAdminToken",
                                           f"{where} rejected the admin token: {error}"))
        if isinstance(error, Unavailable):
            return Stop(Verdict.waiting_for("ModelStoreUnavailable", f"{where} is unavailable: {error}"))
        return Stop(Verdict.waiting_for("ModelStoreError", f"{where} failed: {error}"))
    if isinstance(error, KubeError):
        if error.status in (400, 403, 422):
            return Stop(Verdict.stalled_on("ApplyFailed", str(error)))
        return Stop(Verdict.waiting_for("APIError", str(error)))
    raise error


@dataclass
class _Progress:
    """What one reconcile learned, for the status."""

    store: StoreRef | None = None
    function: dict | None = None
    model: ModelVersion | None = None
    model_condition: ConditionValue | None = None


async def reconcile(ctx: Context, body: dict) -> Result:
    owner = owner_of_body(body)
    names = FunctionNames.for_mlfunction(owner.namespace, owner.name)
    progress = _Progress()
    spec = None
    try:
        spec = parse_spec(body)
        verdict = await _reconcile(ctx, owner, names, spec, progress)
    except Exception as error:  # noqa: BLE001 - every failure becomes a verdict; unknown ones re-raise in _stop_for
        verdict = _stop_for(error, progress.store).verdict
    status = build_status(ctx, body, names, verdict, progress, spec)
    observation = observe_function(progress.function) if progress.function is not None else None
    return Result(status=status, verdict=verdict, retry=verdict.retry, function=observation)


async def _reconcile(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec,
                     progress: _Progress) -> Verdict:
    fn_ns = ctx.config.function_namespace
    progress.store = store = await _store(ctx, spec)
    # Independent children go in parallel: the latency of a new MLFunction is that of its longest chain.
    _, (credential, issued), applied = await _gather(
        _ensure_rbac(ctx, owner, names),
        _credential(ctx, owner, names, spec, store),
        ensure(ctx.kube, owner, build_function(owner, spec, names, ctx.config, store.url)),
    )
    progress.function = applied.obj
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
    otherwise issued anew, stored, and
    the one it replaces revoked. A token issued but never stored (the operator died in between) is revoked by
    the ModelStore's sweep of unreferenced tokens."""
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
    admin = StoreClient(store.url, await admin_token(ctx.kube, store), ctx.config.store_timeout_seconds, keep=True)
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
            old = parse_store(obj)
            admin = StoreClient(old.url, await admin_token(ctx.kube, old), ctx.config.store_timeout_seconds, keep=True)
        await admin.revoke_token(token_id)
        ctx.emit("Normal", "CredentialRevoked", f"Revoked replaced model-store token {token_id}")
    except (ModelStoreError, StoreProblem, KubeError) as error:
        ctx.emit("Warning", "RevocationFailed", f"Could not revoke replaced model-store token {token_id} yet: "
                                                f"{error}")


async def _check_model(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec, store: StoreRef,
                       credential: credentials.StoredCredential, verdict: Verdict, progress: _Progress) -> Verdict:
    """Look the model up with the function's own token: proves the credential works (a token revoked by hand is
    replaced) and finds the version in use."""
    wanted = spec.model.version or "latest"
    what = f"model {spec.model.name}" + (f" version {spec.model.version}" if spec.model.version else "")
    try:
        try:
            found = await StoreClient(store.url, credential.token,
                                      ctx.config.store_timeout_seconds).get_version(spec.model.name, wanted)
        except (Unauthorized, Forbidden):
            ctx.emit("Warning", "CredentialRejected", f"{store.describe()} rejected token {credential.token_id}; "
                                                      "issuing a new one")
            credential, _ = await _credential(ctx, owner, names, spec, store, reissue=True)
            ctx.emit("Normal", "CredentialIssued", f"Issued model-store token {credential.token_id} to replace "
                                                   "the rejected one")
            found = await StoreClient(store.url, credential.token,
                                      ctx.config.store_timeout_seconds).get_version(spec.model.name, wanted)
    except Unavailable as error:
        progress.model_condition = ConditionValue(MODEL_AVAILABLE, None, "ModelStoreUnavailable", str(error))
        return Verdict(ready=verdict.ready, reason=verdict.reason, message=verdict.message, reconciling=True,
                       retry=True)
    progress.model = found
    if found is not None:
        progress.model_condition = ConditionValue(MODEL_AVAILABLE, True, "Found",
                                                  f"{what} is version {found.version} in {store.describe()}")
        return verdict
    if spec.task == "train":
        progress.model_condition = ConditionValue(MODEL_AVAILABLE, False, "NotTrainedYet",
                                                  f"{what} has no version in {store.describe()} until this "
                                                  "function is invoked")
        return verdict
    hint = "pin an existing version" if spec.model.version else "train it first (an MLFunction with task: train)"
    message = f"{what} not found in {store.describe()}; {hint}"
    progress.model_condition = ConditionValue(MODEL_AVAILABLE, False, "ModelNotFound", message)
    # Looked for again at every resync: a model appears when someone trains it, which may take days.
    return Verdict.waiting_for("ModelNotFound", message, retry=False)


def build_status(ctx: Context, body: dict, names: FunctionNames, verdict: Verdict, progress: _Progress,
                 spec: MLFunctionSpec | None) -> dict:
    generation = body["metadata"].get("generation")
    previous = (body.get("status") or {}).get("conditions")
    values = verdict_conditions(verdict)
    if progress.model_condition:
        values.append(progress.model_condition)
    status: dict = {
        "observedGeneration": generation,
        "conditions": merge_conditions(previous, values, generation, now_rfc3339()),
    }
    if progress.function is not None:
        observation = observe_function(progress.function)
        status.update({
            "url": f"{ctx.config.gateway_url.rstrip('/')}/function/{names.function}",
            "function": {"name": names.function, "namespace": ctx.config.function_namespace},
            "replicas": observation.replicas,
            "availableReplicas": observation.available,
            "replicasSummary": replicas_summary(observation) or None,
        })
    if spec is not None:
        version = progress.model.version if progress.model else None
        status["model"] = {"name": spec.model.name, **({"version": version} if version is not None else {})}
    return status


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
        except (StoreProblem, ModelStoreError, KubeError) as error:
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
    store = parse_store(obj)
    admin = StoreClient(store.url, await admin_token(ctx.kube, store), ctx.config.store_timeout_seconds, keep=True)
    await admin.revoke_token(token_id)
    return True
