"""Deploying an MLFunction's function through the OpenFaaS gateway's REST API (gatewayAPI mode, OpenFaaS CE):
the edition's limits are checked before anything is created, then the FunctionDeployment is POSTed when the
gateway has none, PUT when what it reports drifted from it (someone changed it through the gateway), and left
alone when it matches. There are no Function objects to watch: a function that is not ready yet is polled
with the loop's retry back-off (2 s doubling, capped by retry_max_seconds), and every function is compared with
what the gateway reports again at each resync (resync_seconds): that is when drift is corrected.
"""

from __future__ import annotations

from ..api import MLFunctionSpec
from ..builders.edition_limits import EditionDecision, decide
from ..builders.function_deployment import as_function_status, build_function_deployment, drift
from ..config import OperatorConfig
from ..gateway_client import GatewayClient
from ..naming import FunctionNames
from . import Context

_clients: dict[tuple, GatewayClient] = {}


def gateway(ctx: Context) -> GatewayClient:
    """The context's gateway client, else one per gateway and credentials for the process (keep-alive shared)."""
    if ctx.gateway is not None:
        return ctx.gateway
    return client_for(ctx.config)


def client_for(config: OperatorConfig) -> GatewayClient:
    key = (config.gateway_url, config.gateway_username, config.gateway_password.get_secret_value(),
           config.gateway_timeout_seconds)
    if key not in _clients:
        _clients[key] = GatewayClient(*key)
    return _clients[key]


async def check_edition(ctx: Context, spec: MLFunctionSpec, names: FunctionNames) -> EditionDecision:
    """What the edition allows: the decision's spec is what to deploy, None when nothing may be."""
    namespace = ctx.config.function_namespace
    deployed: list[str] = []
    if ctx.config.openfaas_edition == "ce" and namespace == "openfaas-fn":
        deployed = [f.get("name", "") for f in await gateway(ctx).list_functions(namespace)]
    return decide(spec, edition=ctx.config.openfaas_edition, function_namespace=namespace, function=names.function,
                  deployed=deployed)


async def apply(ctx: Context, spec: MLFunctionSpec, names: FunctionNames, store_url: str) -> tuple[dict, bool]:
    """Deploy or correct the function; returns its status in a Function's shape and whether it was created."""
    client = gateway(ctx)
    namespace = ctx.config.function_namespace
    desired = build_function_deployment(spec, names, ctx.config, store_url)
    actual = await client.get_function(names.function, namespace)
    created = False
    if actual is None:
        await client.deploy(desired)
        created = True
    elif changed := drift(desired, actual):
        await client.update(desired)
        ctx.emit("Normal", "FunctionUpdated", f"Updated function {namespace}/{names.function} through the "
                                              f"gateway ({', '.join(changed)} differed)")
    if created or actual is None or drift(desired, actual):
        actual = await client.get_function(names.function, namespace)
    return as_function_status(actual) or as_function_status({"replicas": 0, "availableReplicas": 0}), created


async def remove(ctx: Context, name: str) -> None:
    await gateway(ctx).delete(name, ctx.config.function_namespace)
