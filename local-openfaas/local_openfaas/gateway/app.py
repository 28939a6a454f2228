"""The OpenFaaS gateway API on top of the local runtime: function invocation (/function/<name>[.<namespace>],
/async-function/<name>), the /system API that faas-cli speaks, /healthz, /metrics and /system/metrics-targets. Only /system is behind basic
auth, as in OpenFaaS. Logs, secrets and asynchronous calls have modules of their own."""

from __future__ import annotations

import json
import logging
import platform
import re
import time
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from aiohttp import web
from multidict import CIMultiDict

from local_openfaas.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from local_openfaas.gateway.async_calls import AsyncCall, AsyncCalls, CallbackRefused, check_callback
from local_openfaas.gateway.auth import BasicAuth
from local_openfaas.gateway.logs_api import LogsAPI
from local_openfaas.gateway.secrets_api import SecretsAPI
from local_openfaas.gateway.upstream import UpstreamError, UpstreamPool
from local_openfaas.runtime.provider import FunctionExists, Provider, ProviderUnavailable
from local_openfaas.runtime.runtime import Deployed, FunctionNotFound, FunctionRuntime, FunctionUnavailable
from local_openfaas.runtime.scaling import InvalidScalingLabel, ScalingPolicy
from local_openfaas.runtime.secret_store import SecretStore
from local_openfaas.runtime.spec import FunctionSpec, InvalidFunction, from_deployment, to_function_status

log = logging.getLogger("mlfunctions.gateway")

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business; Host and Content-Length are recomputed and
# Expect was answered by the gateway already.
_HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect"))
MAX_BODY = 64 * 1024 * 1024
_CALL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _target(request: web.Request, route: str = "/function/") -> str:
    """What follows /function/<name> in the request as it came, still percent-encoded (so an encoded slash
    stays one), with its query: the request target for the function."""
    prefix = route + request.match_info["name"]
    rest = request.raw_path[len(prefix):] if request.raw_path.startswith(prefix) else "/"
    return rest if rest.startswith("/") else "/" + rest


def _error(status: int, message: str, **extra) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


class CallFailed(Exception):
    """The gateway could not get the function's answer: `response` is what it says instead."""

    def __init__(self, response: web.Response):
        super().__init__(response.text)
        self.response = response


class Gateway:
    def __init__(self, runtime: FunctionRuntime, provider: Provider, auth: BasicAuth | None,
                 default_namespace: str, upstream_timeout: float = 300.0,
                 ready: Callable[[], bool] = lambda: True, *, secrets: SecretStore, log_dir: Path,
                 orchestration: str = "local-processes", async_options: dict | None = None):
        self.runtime, self.provider, self.auth = runtime, provider, auth
        self.default_namespace = default_namespace
        self.upstream_timeout = upstream_timeout
        self.orchestration = orchestration
        self._ready = ready
        self._upstream = UpstreamPool()
        self._metrics = GatewayMetrics(runtime)
        self.secrets = SecretsAPI(secrets, default_namespace)
        self.logs = LogsAPI(log_dir, default_namespace, lambda ns, name: (ns, name) in runtime.functions)
        self.async_calls = AsyncCalls(self._invoke_queued, **(async_options or {}))

    def register_collector(self, collector) -> None:
        """More series on /metrics (the cron-connector's)."""
        self._metrics.registry.register(collector)

    def app(self) -> web.Application:
        # Auth wraps the /system handlers only: a middleware would cost every function call its extra frame.
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_route("*", "/function/{name}", self.invoke)
        app.router.add_route("*", "/function/{name}/{tail:.*}", self.invoke)
        app.router.add_route("*", "/async-function/{name}", self.invoke_async)
        app.router.add_route("*", "/async-function/{name}/{tail:.*}", self.invoke_async)
        system = self._authenticated
        app.router.add_get("/system/functions", system(self.list_functions))
        app.router.add_post("/system/functions", system(self.deploy))
        app.router.add_put("/system/functions", system(self.update))
        app.router.add_delete("/system/functions", system(self.delete))
        app.router.add_get("/system/function/{name}", system(self.describe))
        app.router.add_post("/system/scale-function/{name}", system(self.scale))
        app.router.add_get("/system/namespaces", system(self.namespaces))
        app.router.add_get("/system/info", system(self.info))
        app.router.add_get("/system/metrics-targets", system(self.metrics_targets))
        app.router.add_get("/system/logs", system(self.logs.stream))
        app.router.add_get("/system/secrets", system(self.secrets.list))
        app.router.add_post("/system/secrets", system(self.secrets.create))
        app.router.add_put("/system/secrets", system(self.secrets.update))
        app.router.add_delete("/system/secrets", system(self.secrets.delete))
        app.on_startup.append(self.async_calls.start)
        app.on_shutdown.append(self.logs.stop)
        app.on_cleanup.append(self.async_calls.close)
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
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def metrics_targets(self, _request: web.Request) -> web.Response:
        """Prometheus HTTP service discovery (http_sd_config) for the replicas' own /_/metrics."""
        return web.json_response(self._metrics.targets())

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
        self._metrics.started(deployed)
        response = None
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                response = _error(413, f"the request body is larger than the gateway's limit of {MAX_BODY} bytes")
                return response
            response = await self._forward(request, deployed, body, started)
            return response
        finally:
            meter.finished()
            if response is not None:  # None: the caller went away before an answer, there is no code to count
                self._metrics.finished(deployed, response.status, time.perf_counter() - started)

    @staticmethod
    def _forwarded_headers(request: web.Request) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers.append(("X-Forwarded-Host", request.host))
        if request.remote:
            headers.append(("X-Forwarded-For", request.remote))
        return headers

    async def _forward(self, request: web.Request, deployed: Deployed, body: bytes,
                       started: float) -> web.StreamResponse:
        try:
            answer = await self._call(deployed, request.method, _target(request), self._forwarded_headers(request),
                                      body)
        except CallFailed as failed:
            return failed.response
        out = CIMultiDict()
        for name, value in answer.headers:
            text = name.decode("latin-1")
            if text.lower() not in _HOP_BY_HOP:
                out.add(text, value.decode("latin-1"))
        out["X-Duration-Seconds"] = f"{time.perf_counter() - started:.6f}"
        return web.Response(status=answer.status, body=answer.body, headers=out)

    async def _call(self, deployed: Deployed, method: str, target: str, headers: list[tuple[str, str]],
                    body: bytes):
        """The function's answer from a ready replica (scaling from zero if need be); raises CallFailed."""
        replica = deployed.supervisor.pick() if deployed.supervisor is not None else None
        if replica is None:  # scaled to zero, starting, or unable to run: the slow path
            waiting = time.perf_counter()
            try:
                replica = await self.runtime.replica_for(deployed)
            except FunctionUnavailable as error:
                raise CallFailed(_error(503, f"function {deployed.spec.name}.{deployed.spec.namespace} is not "
                                             f"available: {error}")) from None
            self._metrics.cold_start(deployed, time.perf_counter() - waiting)
        try:
            return await self._upstream.request(replica.address, method, target, headers, body,
                                                self.upstream_timeout)
        except UpstreamError as error:
            raise CallFailed(_error(502, f"function {deployed.spec.name}: the replica at {replica.where} "
                                         f"failed the request: {error}")) from None
        except TimeoutError:
            raise CallFailed(_error(504, f"function {deployed.spec.name}: no answer within "
                                         f"{self.upstream_timeout:.0f}s")) from None

    # ---- asynchronous invocation ----

    async def invoke_async(self, request: web.Request) -> web.Response:
        namespace, name = self._split(request.match_info["name"])
        if (namespace, name) not in self.runtime.functions:
            return _error(404, f"error finding function {name}.{namespace}: not found")
        callback = request.headers.get("X-Callback-Url")
        if callback:
            try:
                await check_callback(callback, self.async_calls.callback_networks)
            except CallbackRefused as error:
                return _error(400, str(error))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the request body is larger than the gateway's limit of {MAX_BODY} bytes")
        call_id = request.headers.get("X-Call-Id", "")
        if not _CALL_ID.match(call_id):  # the caller's own id is kept when it is a plain token
            call_id = str(uuid.uuid4())
        headers = [(k, v) for k, v in self._forwarded_headers(request) if k.lower() != "x-call-id"]
        headers.append(("X-Call-Id", call_id))
        call = AsyncCall(call_id, namespace, name, request.method, _target(request, "/async-function/"), headers,
                         body, callback or None)
        if not self.async_calls.submit(call):
            response = _error(429, f"the asynchronous queue is full ({self.async_calls.queued} calls waiting); "
                                   "retry later")
            response.headers["Retry-After"] = "1"
            return response
        return web.Response(status=202, headers={"X-Call-Id": call_id})

    async def _invoke_queued(self, call: AsyncCall) -> tuple[int, str, bytes]:
        try:
            deployed = self.runtime.get(call.namespace, call.name)
        except FunctionNotFound:
            return 404, "application/json", json.dumps(
                {"message": f"function {call.name}.{call.namespace} was removed before its call ran"}).encode()
        deployed.meter.started()
        self._metrics.started(deployed)
        started, code = time.perf_counter(), None
        try:
            answer = await self._call(deployed, call.method, call.target, call.headers, call.body)
            code = answer.status
        except CallFailed as failed:
            code = failed.response.status
            return failed.response.status, failed.response.content_type, failed.response.body
        finally:
            deployed.meter.finished()
            if code is not None:
                self._metrics.finished(deployed, code, time.perf_counter() - started)
        content_type = next((v.decode("latin-1") for k, v in answer.headers if k.lower() == b"content-type"), "")
        return answer.status, content_type, answer.body

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
        """faas-provider's types.ProviderInfo inside the gateway's GatewayInfo, as `faas-cli version` reads it."""
        release = metadata.version("mlfunctions-local-openfaas")
        version = {"commit_message": "", "sha": "", "release": release}
        return web.json_response({
            "provider": {"provider": "local-openfaas", "orchestration": self.orchestration, "version": version},
            "version": version,
            "arch": platform.machine(),
        })
