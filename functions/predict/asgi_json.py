"""A minimal JSON-over-ASGI layer for the predict function: routes, request bodies with a size limit, JSON
answers and JSON errors (or, for binary tensors, an answer body given as bytes), lifespan hooks. Nothing else.

Hand-written because it was measured, and kept only while the numbers say so. bench/bench_predict_asgi.py
calls this layer, Starlette and FastAPI in-process with the function's route table and the same handler
(bench/results/predict_asgi.json, Starlette 1.10): 6.7 µs of CPU per request here, 14.1 µs with Starlette,
46.5 µs with FastAPI; on top of uvicorn, importing Starlette adds 16 ms and 2.8 MB to every replica, FastAPI
204 ms and 18 MB. The whole one-row request costs the function 252 µs of CPU (bench/results/functions.json:
warm p50 0.521 ms, against 15.2 ms for the same forest served by scikit-learn behind Starlette), so Starlette
would add about 3% per request and 4% to a 380 ms cold start (the first measurement, when this layer was
written, found 40 µs against 8). The function's whole HTTP surface is a dozen fixed routes, so this stays
small; a re-run showing the gap closed is the reason to move to Starlette, which the train function uses."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

log = logging.getLogger("function")

Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[["Request"], Awaitable[Answer]]


class HTTPError(Exception):
    """Raised by a handler to answer `status` with {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Raw:
    """An answer body that is not JSON: sent as it is, with its media type."""

    __slots__ = ("content", "media_type")

    def __init__(self, content: bytes, media_type: str):
        self.content = content
        self.media_type = media_type


class Request:
    __slots__ = ("_headers", "_max_body", "_query", "_receive", "_scope", "method", "params", "path")

    def __init__(self, scope: dict[str, Any], receive: Callable, params: dict[str, str], max_body: int):
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.params = params
        self._scope = scope
        self._receive = receive
        self._max_body = max_body
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None

    def header(self, name: str) -> str:
        if self._headers is None:
            self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self._scope["headers"]}
        return self._headers.get(name, "")

    @property
    def media_type(self) -> str:
        return self.header("content-type").split(";", 1)[0].strip().lower()

    def query(self, name: str) -> str | None:
        if self._query is None:
            raw = self._scope.get("query_string", b"")
            self._query = dict(parse_qsl(raw.decode("latin-1"))) if raw else {}
        return self._query.get(name)

    async def body(self) -> bytes:
        """The whole body; more than the limit is refused (413) without reading the rest."""
        declared = self.header("content-length")
        if declared.isdigit() and int(declared) > self._max_body:
            raise HTTPError(413, f"the request body is larger than {self._max_body} bytes")
        chunks, size = [], 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise HTTPError(413, f"the request body is larger than {self._max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class JsonApp:
    """An ASGI application over `routes`: (method, path pattern with {name} segments, handler)."""

    def __init__(
        self,
        routes: list[tuple[str, str, Handler]],
        *,
        max_body: int,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        errors: dict[type[Exception], Callable[[Exception], HTTPError]] | None = None,
    ):
        self._exact: dict[str, dict[str, Handler]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
        for method, path, handler in routes:
            if "{" in path:
                regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+?)", path) + "$")
                for existing, methods in self._patterns:
                    if existing.pattern == regex.pattern:
                        methods[method] = handler
                        break
                else:
                    self._patterns.append((regex, {method: handler}))
            else:
                self._exact.setdefault(path, {})[method] = handler
        self._max_body = max_body
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        self._errors = errors or {}

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        path, method = scope["path"], scope["method"]
        params: dict[str, str] = {}
        methods = self._exact.get(path)
        if methods is None:
            for regex, candidates in self._patterns:
                match = regex.match(path)
                if match:
                    methods, params = candidates, match.groupdict()
                    break
        try:
            if methods is None:
                raise HTTPError(404, f"no such endpoint: {method} {path}")
            handler = methods.get(method)
            if handler is None:
                raise HTTPError(
                    405, f"method {method} is not allowed on {path}", {"Allow": ", ".join(methods)}
                )
            answer = await handler(Request(scope, receive, params, self._max_body))
        except Exception as error:
            answer = self._error_answer(error, method, path)
        await _send(send, *answer)

    def _error_answer(self, error: Exception, method: str, path: str) -> Answer:
        if not isinstance(error, HTTPError):
            translate = next((fn for kind, fn in self._errors.items() if isinstance(error, kind)), None)
            if translate is None:
                log.exception("unhandled error", extra={"method": method, "path": path})
                return 500, {"error": f"internal error: {type(error).__name__}: {error}"}
            error = translate(error)
        return error.status, {"error": error.message}, error.headers

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            hook = {"lifespan.startup": self._on_startup, "lifespan.shutdown": self._on_shutdown}.get(
                message["type"]
            )
            try:
                if hook is not None:
                    await hook()
            except Exception as error:
                log.exception("lifespan hook failed")
                await send({"type": message["type"] + ".failed", "message": str(error)})
                return
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


# One encoder for every answer: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


async def _send(send: Callable, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
    if type(document) is Raw:
        body, media_type = document.content, document.media_type.encode("latin-1")
    else:
        body, media_type = _ENCODER.encode(document).encode(), b"application/json"
    raw_headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
