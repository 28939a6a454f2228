"""Reconciling an MLFunction: its ServiceAccount, Role, RoleBinding, credential Secret and OpenFaaS Function in the
function namespace, a train function's invoke Secret in its own namespace, the default ModelStore if it is
missing, and the MLFunction's status. Deleting one: mlfunction_cleanup.py.

Nothing is created and no token is minted before every check has passed: the caps per tenant, the store's
admission of the namespace, that every child is absent or ours, and (when a token is minted) the store's verdict
on who may use the model.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..api import FunctionRef, MLFunctionSpec
from ..builders import credentials, limits, rbac
from ..builders.edition_limits import EditionUnsupported
from ..builders.function import build_function
from ..builders.mlfunction_status import build_mlfunction_status, model_unknown, model_verdict
from ..builders.status import ConditionValue, Verdict, function_verdict, now_rfc3339, observe_function
from ..builders.training_status import run_event
from ..children import ChildRef, check_owned, ensure
from ..kube import FUNCTION, MODELSTORE, SECRET, SERVICE_ACCOUNT, Applied
from ..naming import LABEL_MANAGED_BY, LABEL_PART_OF, MANAGED_BY, FunctionNames, Owner, invoke_secret_name
from ..store_client import Forbidden, Unauthorized, Unavailable
from ..stores import StoreProblem, StoreRef, parse_store
from . import Context, Result, gateway_function
from .failures import parse_spec, verdict_for
from .function_credentials import InvokeDigest, invoke_digest, store_credential
from .mlfunction_cleanup import Cleanup, migrate
from .mlfunction_cleanup import finalize as _finalize
from .model_access import refusal

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
    edition_condition: ConditionValue | None = None
    deployed: dict | None = None  # gatewayAPI mode: what the gateway had before this pass


async def reconcile(ctx: Context, body: dict) -> Result:
    owner = owner_of_body(body)
    names = FunctionNames.for_mlfunction(owner.namespace, owner.name)
    progress = _Progress()
    spec = None
    try:
        spec = parse_spec(MLFunctionSpec, body)
        verdict = await _reconcile(ctx, body, owner, names, spec, progress)
    except Exception as error:  # noqa: BLE001 - every known failure becomes a verdict; verdict_for re-raises the rest
        verdict = verdict_for(error, progress.store)
    status = build_mlfunction_status(
        body, verdict, now_rfc3339(), spec=spec, function=progress.function,
        function_ref=FunctionRef(name=names.function, namespace=ctx.config.function_namespace),
        gateway_url=ctx.config.gateway_url, model_version=progress.model_version,
        model_condition=progress.model_condition, edition_condition=progress.edition_condition)
    if (event := run_event((body.get("status") or {}).get("training"), status.training)) is not None:
        ctx.emit(*event)  # a scheduled run the cron-connector reported since the last status
    observation = observe_function(progress.function) if progress.function is not None else None
    return Result(status=status, verdict=verdict, function=observation)


async def _reconcile(ctx: Context, body: dict, owner: Owner, names: FunctionNames, spec: MLFunctionSpec,
                     progress: _Progress) -> Verdict:
    fn_ns = ctx.config.function_namespace
    await _check_limits(ctx, body, owner, spec)
    if ctx.config.gateway_mode:  # what the edition cannot do is said before anything is created
        plan = await gateway_function.plan(ctx, owner, spec, names)
        progress.edition_condition = plan.decision.condition
        if not plan.decision.deploy:
            raise EditionUnsupported(plan.decision.stalled_reason, plan.decision.condition.message)
        spec, progress.deployed = plan.decision.spec, plan.deployed
    progress.store = store = await _store(ctx, owner, spec)
    refs = _children(ctx, owner, names, spec)
    found = await check_owned(ctx.kube, owner, refs.values(), ctx.cached_children)
    digest = _digest(ctx, owner, spec, found.get(refs.get("invoke")))
    credential, issued = await store_credential(ctx, owner, names, spec, store, found[refs["secret"]], digest)
    # Independent children go in parallel: the latency of a new MLFunction is that of its longest chain.
    _, applied = await _gather(
        ensure(ctx.kube, owner, rbac.build_service_account(owner, names, fn_ns), found[refs["service_account"]]),
        _apply_function(ctx, owner, names, spec, store, progress, found.get(refs.get("function"))),
    )
    _announce(ctx, owner, spec, store, f"Function {fn_ns}/{names.function}", applied.created,
              credential if issued else None)
    observation = observe_function(applied.obj)
    verdict = function_verdict(f"{fn_ns}/{names.function}", observation)
    if ctx.config.gateway_mode and not verdict.ready:  # nothing to watch: poll until it is ready
        verdict = Verdict.waiting_for(verdict.reason, verdict.message, retry=True)
    previous = ((body.get("status") or {}).get("function") or {}).get("name")
    if previous and previous != names.function:  # a Function under the name an earlier release gave it
        progress.function = None  # the status names the old Function (and its URL) until it is gone
        if observation.ready:  # callers that follow status.url always find a Function there
            await migrate(ctx, owner, FunctionNames.for_function(previous), names.function)
            progress.function = applied.obj
        else:
            verdict = Verdict.waiting_for("Migrating", f"Function {fn_ns}/{names.function} replaces "
                                                       f"{fn_ns}/{previous}; waiting for it to be ready", retry=False)
    return await _check_model(ctx, owner, names, spec, store, credential, digest, verdict, progress)


def _digest(ctx: Context, owner: Owner, spec: MLFunctionSpec, invoke_secret: dict | None) -> InvokeDigest:
    """The train function's invoke digest, made (and its Secret created) when first asked for, then kept."""
    known: list[str | None] = []

    async def digest() -> str | None:
        if not known:
            known.append(await invoke_digest(ctx, owner, invoke_secret) if spec.task == "train" else None)
        return known[0]

    return digest


def _children(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec) -> dict[str, ChildRef]:
    """Every object the MLFunction owns, by role."""
    fn_ns = ctx.config.function_namespace
    # In gatewayAPI mode the gateway holds the function: no Function object (nor RBAC on that CRD).
    refs = {} if ctx.config.gateway_mode else {"function": ChildRef(FUNCTION, fn_ns, names.function)}
    # No Role or RoleBinding: the kubelet mounts the credential Secret into the function's pod, and the pod's
    # ServiceAccount needs no right for that (earlier releases made them; they go with their MLFunction).
    refs |= {"service_account": ChildRef(SERVICE_ACCOUNT, fn_ns, names.service_account),
             "secret": ChildRef(SECRET, fn_ns, names.credential_secret)}
    if spec.task == "train":
        refs["invoke"] = ChildRef(SECRET, owner.namespace, invoke_secret_name(owner.name))
    return refs


def _announce(ctx: Context, owner: Owner, spec: MLFunctionSpec, store: StoreRef, function: str, created: bool,
              issued: credentials.StoredCredential | None) -> None:
    """One Event for what this pass created (a new MLFunction gets one, not two)."""
    token = None
    if issued:
        rights = "+".join(credentials.token_scope(spec.model.name, spec.task, owner.namespace).rights)
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
                          progress: _Progress, existing: dict | None) -> Applied:
    """The Function, noted as soon as it is applied: when a step beside it fails, the status still says where it
    is, and the loop knows the watch event of this apply for the echo it is (no extra pass)."""
    if ctx.config.gateway_mode:
        function, created = await gateway_function.apply(ctx, owner, spec, names, store.url, progress.deployed)
        progress.function = function
        return Applied(function, created)
    applied = await ensure(ctx.kube, owner, build_function(owner, spec, names, ctx.config, store.url), existing)
    progress.function = applied.obj
    return applied


async def _check_limits(ctx: Context, body: dict, owner: Owner, spec: MLFunctionSpec) -> None:
    limits.check_function(spec, ctx.config)
    peers = await ctx.namespace_peers(owner.namespace)
    me = limits.Peer(owner.uid, owner.name, body["metadata"].get("creationTimestamp") or "",
                     limits.usage_of(spec, ctx.config))
    limits.check_namespace(owner.namespace, me, peers, ctx.config)


async def _store(ctx: Context, owner: Owner, spec: MLFunctionSpec) -> StoreRef:
    name = spec.model_store or ctx.config.default_model_store
    namespace = ctx.config.operator_namespace
    obj = await ctx.store_object(name, namespace)
    if obj is not None:
        store = parse_store(obj)
        if not store.admits(owner.namespace, default=name == ctx.config.default_model_store):
            raise StoreProblem("ModelStoreNotAllowed", f"spec.modelStore: {store.describe()} does not admit "
                                                       f"namespace {owner.namespace} (its spec.namespaces and "
                                                       "spec.access name the namespaces that may use it)",
                               stalled=True)
        return store
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


async def _check_model(ctx: Context, owner: Owner, names: FunctionNames, spec: MLFunctionSpec, store: StoreRef,
                       credential: credentials.StoredCredential, digest: InvokeDigest, verdict: Verdict,
                       progress: _Progress) -> Verdict:
    """Look the model up with the function's own token: proves the credential works (a token revoked by hand is
    replaced; a model that changed hands stalls the MLFunction) and finds the version in use."""
    wanted = spec.model.version or "latest"
    try:
        try:
            found = await ctx.stores.with_token(store, credential.token).get_version(spec.model.name, wanted)
        except (Unauthorized, Forbidden) as error:
            if (denied := refusal(error, spec.model.name, store, owner.namespace, spec.task)) is not None:
                raise denied from None
            ctx.emit("Warning", "CredentialRejected", f"{store.describe()} rejected token {credential.token_id}; "
                                                      "issuing a new one")
            credential, _ = await store_credential(ctx, owner, names, spec, store, None, digest, reissue=True)
            ctx.emit("Normal", "CredentialIssued", f"Issued model-store token {credential.token_id} to replace "
                                                   "the rejected one")
            found = await ctx.stores.with_token(store, credential.token).get_version(spec.model.name, wanted)
    except Unavailable as error:
        verdict, progress.model_condition = model_unknown(verdict, str(error))
        return verdict
    progress.model_version = found.version if found else None
    verdict, progress.model_condition = model_verdict(spec, store.describe(), verdict, progress.model_version)
    return verdict


async def finalize(ctx: Context, body: dict, give_up_revoking: bool) -> Cleanup:
    """Deleting the MLFunction: its children under its names, and under the name its status still gives while a
    move to a new name is unfinished (mlfunction_cleanup.finalize)."""
    owner = owner_of_body(body)
    names = [FunctionNames.for_mlfunction(owner.namespace, owner.name)]
    previous = ((body.get("status") or {}).get("function") or {}).get("name")
    if previous and previous != names[0].function:
        names.append(FunctionNames.for_function(previous))
    return await _finalize(ctx, owner, names, give_up_revoking)
