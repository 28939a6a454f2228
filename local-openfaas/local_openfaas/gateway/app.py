"""The OpenFaaS gateway API on top of the local runtime: function invocation (/function/<name>[.<namespace>]),
the /system API that faas-cli speaks, /healthz and /metrics. Only /system is behind basic auth, as in OpenFaaS."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from aiohttp import web
from multidict import CIMultiDict

from local_openfaas.gateway import metrics
from local_openfaas.gateway.auth import BasicAuth
from local_openfaas.gateway.upstream import UpstreamError, UpstreamPool
from local_openfaas.runtime.provider import FunctionExists, Provider, ProviderUnavailable
from local_openfaas.runtime.runtime import Deployed, FunctionNotFound, FunctionRuntime, FunctionUnavailable
from local_openfaas.runtime.scaling import InvalidScalingLabel, ScalingPolicy
from local_openfaas.runtime.spec import FunctionSpec, InvalidFunction, from_deployment, to_function_status

log = logging.getLogger("mlfunctions.gateway")

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business; Host and Content-Length are recomputed and
# Expect was answered by the gateway already.
_HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect"))
MAX_BODY = 64 * 1024 * 1024


def _target(request: web.Request) -> str:
    """What follows /function/<name> in the request as it came, still percent-encoded (so an encoded slash
    stays one), with its query: the request target for the function."""
    prefix = "/function/" + request.match_info["name"]
    rest = request.raw_path[len(prefix):] if request.raw_path.startswith(prefix) else "/"
    return rest if rest.startswith("/") else "/" + rest


def _error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


class Gateway:
    def __init__(self, runtime: FunctionRuntime, provider: Provider, auth: BasicAuth | None,
                 default_namespace: str, upstream_timeout: float = 300.0,
                 ready: Callable[[], bool] = lambda: True):
        self.runtime, self.provider, self.auth = runtime, provider, auth
        self.default_namespace = default_namespace
        self.upstream_timeout = upstream_timeout
        self._ready = ready
        self._upstream = UpstreamPool()

    def app(self) -> web.Application:
        # Auth wraps the /system handlers only: a middleware would cost every function call its extra frame.
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_route("*", "/function/{name}", self.invoke)
        app.router.add_route("*", "/function/{name}/{tail:.*}", self.invoke)
        system = self._authenticated
        app.router.add_get("/system/functions", system(self.list_functions))
        app.router.add_post("/system/functions", system(self.deploy))
        app.router.add_put("/system/functions", system(self.update))
        app.router.add_delete("/system/functions", system(self.delete))
        app.router.add_get("/system/function/{name}", system(self.describe))
        app.router.add_post("/system/scale-function/{name}", system(self.scale))
        app.router.add_get("/system/namespaces", system(self.namespaces))
        app.router.add_get("/system/info", system(self.info))
        app.on_cleanup.append(self._close_upstream)
        return app

    async def _close_upstream(self, _app) -> None:
        self._upstream.close()

    def _authenticated(self, handler):
        async def checked(request: web.Request) -> web.StreamResponse:
            if self.auth is not None and not self.auth.allows(request.headers.get("Authorization")):
                response = _error(401, "unauthorized: /system needs basic auth (user and password of the gateway)")
                response.headers["WWW-Authenticate"] = 'Basic realm="Restricted"'
                return response
            return await handler(request)

        return checked

    async def healthz(self, _request: web.Request) -> web.Response:
        if not self._ready():
            return _error(503, "the gateway is starting: functions are not synchronised yet")
        return web.Response(text="OK")

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(self.runtime).encode(),
                            headers={"Content-Type": metrics.CONTENT_TYPE})

    # ---- invocation ----

    def _split(self, qualified: str) -> tuple[str, str]:
        name, _, namespace = qualified.partition(".")
        return namespace or self.default_namespace, name

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        namespace, name = self._split(request.match_info["name"])
        try:
            deployed = self.runtime.get(namespace, name)
        except FunctionNotFound:
            return _error(404, f"error finding function {name}.{namespace}: not found")
        meter = deployed.meter
        meter.started()
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return _error(413, f"the request body is larger than the gateway's limit of {MAX_BODY} bytes")
            return await self._forward(request, deployed, body, started)
        finally:
            meter.finished()

    async def _forward(self, request: web.Request, deployed: Deployed, body: bytes,
                       started: float) -> web.StreamResponse:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers.append(("X-Forwarded-Host", request.host))
        if request.remote:
            headers.append(("X-Forwarded-For", request.remote))
        replica = deployed.supervisor.pick() if deployed.supervisor is not None else None
        if replica is None:  # scaled to zero, starting, or unable to run: the slow path
            try:
                replica = await self.runtime.replica_for(deployed)
            except FunctionUnavailable as error:
                return _error(503, f"function {deployed.spec.name}.{deployed.spec.namespace} is not available: "
                                   f"{error}")
        try:
            answer = await self._upstream.request(replica.port, request.method, _target(request), headers, body,
                                                  self.upstream_timeout)
        except UpstreamError as error:
            return _error(502, f"function {deployed.spec.name}: the replica on port {replica.port} failed the "
                               f"request: {error}")
        except TimeoutError:
            return _error(504, f"function {deployed.spec.name}: no answer within {self.upstream_timeout:.0f}s")
        out = CIMultiDict()
        for name, value in answer.headers:
            text = name.decode("latin-1")
            if text.lower() not in _HOP_BY_HOP:
                out.add(text, value.decode("latin-1"))
        out["X-Duration-Seconds"] = f"{time.perf_counter() - started:.6f}"
        return web.Response(status=answer.status, body=answer.body, headers=out)

    # ---- /system ----

    def _namespace(self, request: web.Request, body: dict | None = None) -> str:
        return request.query.get("namespace") or (body or {}).get("namespace") or self.default_namespace

    def _status(self, deployed: Deployed) -> dict:
        snapshot = deployed.supervisor.snapshot() if deployed.supervisor else None
        return to_function_status(deployed.spec, snapshot.replicas if snapshot else 0,
                                  snapshot.available if snapshot else 0, deployed.meter.invocations)

    async def list_functions(self, request: web.Request) -> web.Response:
        namespace = self._namespace(request)
        items = [self._status(d) for (ns, _), d in sorted(self.runtime.functions.items()) if ns == namespace]
        return web.json_response(items)

    async def describe(self, request: web.Request) -> web.Response:
        namespace, name = self._namespace(request), request.match_info["name"]
        try:
            return web.json_response(self._status(self.runtime.get(namespace, name)))
        except FunctionNotFound:
            return _error(404, f"function {name} not found in namespace {namespace}")

    async def _deployment(self, request: web.Request) -> FunctionSpec | web.Response:
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "expected a JSON FunctionDeployment body: "
                               '{"service": "<name>", "image": "<image>", "envVars": {...}, "labels": {...}, ...}')
        try:
            spec = from_deployment(payload, self._namespace(request))
            ScalingPolicy.from_labels(spec.labels)
            return spec
        except (InvalidFunction, InvalidScalingLabel) as error:
            return _error(400, str(error))

    async def deploy(self, request: web.Request) -> web.Response:
        spec = await self._deployment(request)
        if isinstance(spec, web.Response):
            return spec
        try:
            await self.provider.deploy(spec)
        except FunctionExists as error:
            return _error(409, f"{error}; update it with PUT /system/functions")
        except InvalidFunction as error:
            return _error(400, str(error))
        except ProviderUnavailable as error:
            return _error(503, str(error))
        log.info("deployed", extra={"function": spec.name, "namespace": spec.namespace, "image": spec.image})
        return web.Response(status=202)

    async def update(self, request: web.Request) -> web.Response:
        spec = await self._deployment(request)
        if isinstance(spec, web.Response):
            return spec
        try:
            await self.provider.update(spec)
        except FunctionNotFound as error:
            return _error(404, f"{error}; deploy it with POST /system/functions")
        except InvalidFunction as error:
            return _error(400, str(error))
        except ProviderUnavailable as error:
            return _error(503, str(error))
        log.info("updated", extra={"function": spec.name, "namespace": spec.namespace, "image": spec.image})
        return web.Response(status=202)

    async def delete(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
            name = payload["functionName"]
            if not isinstance(name, str) or not name:
                raise TypeError
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            return _error(400, 'expected a JSON body {"functionName": "<name>"}')
        namespace = self._namespace(request, payload)
        try:
            await self.provider.delete(namespace, name)
        except FunctionNotFound as error:
            return _error(404, str(error))
        except ProviderUnavailable as error:
            return _error(503, str(error))
        log.info("deleted", extra={"function": name, "namespace": namespace})
        return web.Response(status=202)

    async def scale(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            payload = await request.json()
            replicas = payload["replicas"]
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise TypeError
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            return _error(400, 'expected a JSON body {"serviceName": "<name>", "replicas": <integer >= 0>}')
        namespace = self._namespace(request, payload)
        try:
            self.runtime.scale(namespace, name, replicas)
        except FunctionNotFound as error:
            return _error(404, str(error))
        except FunctionUnavailable as error:
            return _error(409, f"function {name} cannot run: {error}")
        return web.Response(status=202)

    async def namespaces(self, _request: web.Request) -> web.Response:
        names = {self.default_namespace} | {ns for ns, _ in self.runtime.functions}
        return web.json_response(sorted(names))

    async def info(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "provider": {"provider": "mlfunctions-local", "orchestration": "local-processes",
                         "version": {"release": "0.1.0", "sha": ""}},
            "version": {"release": "0.1.0", "sha": ""},
            "arch": "x86_64",
        })
