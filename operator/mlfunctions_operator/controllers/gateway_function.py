"""Deploying an MLFunction's function through the OpenFaaS gateway's REST API (gatewayAPI mode, OpenFaaS CE).

Before anything is created (plan): the edition's limits are decided, and a function the gateway already has under
the name must be ours (its labels carry the MLFunction's ownership labels) or the MLFunction is NotOwned, as in
functionResource mode. Then (apply) the FunctionDeployment is POSTed when the gateway has none, PUT when what it
reports drifted from it (someone changed it through the gateway), and left alone when it matches.

There are no Function objects to watch: a function that is not ready yet is polled with the loop's retry back-off
(2 s doubling, capped by retry_max_seconds), and every function is compared with what the gateway reports at each
resync (resync_seconds): that is when drift is corrected.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api import MLFunctionSpec
from ..builders.edition_limits import CE_NAMESPACE, EditionDecision, decide
from ..builders.function_deployment import as_function_status, build_function_deployment, drift
from ..children import NotOwned
from ..config import OperatorConfig
from ..gateway_client import GatewayClient
from ..gateway_credentials import FileCredentials, StaticCredentials
from ..kube import FUNCTION
from ..naming import LABEL_OWNER_NAME, LABEL_OWNER_NAMESPACE, FunctionNames, Owner
from . import Context

_clients: dict[tuple, GatewayClient] = {}


@dataclass(frozen=True)
class Plan:
    """What the edition allows (`decision.spec` is what to deploy, None: nothing) and what the gateway has now."""

    decision: EditionDecision
    deployed: dict | None = None


def gateway(ctx: Context) -> GatewayClient:
    """The context's gateway client, else one per gateway and credential source for the process (keep-alive
    shared; credential files are re-read by the client when they change)."""
    if ctx.gateway is not None:
        return ctx.gateway
    return client_for(ctx.config)


def client_for(config: OperatorConfig) -> GatewayClient:
    source = config.gateway_credentials_dir or (config.gateway_username, config.gateway_password.get_secret_value())
    key = (config.gateway_url, source, config.gateway_timeout_seconds)
    if key not in _clients:
        auth = (FileCredentials(config.gateway_credentials_dir) if config.gateway_credentials_dir
                else StaticCredentials(config.gateway_username, config.gateway_password.get_secret_value()))
        _clients[key] = GatewayClient(config.gateway_url, auth, config.gateway_timeout_seconds)
    return _clients[key]


async def plan(ctx: Context, owner: Owner, spec: MLFunctionSpec, names: FunctionNames) -> Plan:
    """Raises NotOwned for a function of someone else's under the name."""
    namespace, edition = ctx.config.function_namespace, ctx.config.openfaas_edition

    def decision(deployed: list[str]) -> EditionDecision:
        return decide(spec, edition=edition, function_namespace=namespace, function=names.function,
                      deployed=deployed)

    if edition == "ce" and namespace != CE_NAMESPACE:  # CE's gateway would refuse the namespace itself
        return Plan(decision([]))
    client = gateway(ctx)
    current = await client.get_function(names.function, namespace)
    if current is not None and not _owned(owner, current):
        labels = current.get("labels") or {}
        holder = (f"{labels[LABEL_OWNER_NAMESPACE]}/{labels[LABEL_OWNER_NAME]}"
                  if LABEL_OWNER_NAME in labels and LABEL_OWNER_NAMESPACE in labels else None)
        raise NotOwned(FUNCTION, namespace, names.function, holder)
    listed = [f.get("name", "") for f in await client.list_functions(namespace)] if edition == "ce" else []
    return Plan(decision(listed), current)


async def apply(ctx: Context, owner: Owner, spec: MLFunctionSpec, names: FunctionNames, store_url: str,
                current: dict | None) -> tuple[dict, bool]:
    """Deploy or correct the function (`current`: what plan() saw); returns its status in a Function's shape
    and whether it was created."""
    client = gateway(ctx)
    namespace = ctx.config.function_namespace
    desired = build_function_deployment(owner, spec, names, ctx.config, store_url)
    if current is None:
        await client.deploy(desired)
        return as_function_status(await client.get_function(names.function, namespace) or {}), True
    if changed := drift(desired, current):
        await client.update(desired)
        ctx.emit("Normal", "FunctionUpdated", f"Updated function {namespace}/{names.function} through the "
                                              f"gateway ({', '.join(changed)} differed)")
        current = await client.get_function(names.function, namespace) or {}
    return as_function_status(current), False


async def remove(ctx: Context, owner: Owner, name: str) -> None:
    """Delete the function under `name` if it is ours (someone else's is left alone, as children are)."""
    namespace = ctx.config.function_namespace
    if ctx.config.openfaas_edition == "ce" and namespace != CE_NAMESPACE:
        return  # nothing can have been deployed there
    client = gateway(ctx)
    current = await client.get_function(name, namespace)
    if current is not None and _owned(owner, current):
        await client.delete(name, namespace)


def _owned(owner: Owner, reported: dict) -> bool:
    return owner.owns({"metadata": {"labels": reported.get("labels") or {}}})
