"""ASGI middleware bounding what a request may cost before any handler runs, with JSON answers.

- ConcurrencyLimit: at most IRIS_MAX_CONCURRENT_REQUESTS requests in flight per worker; more are answered
  `503` with `Retry-After` at once (health checks aside, so the kubelet still gets its answer, and the change
  feed's long-polls, bounded by IRIS_MAX_CHANGE_WAITERS instead).
- BodyLimit: every body except an upload's is read here, whole, before the app: at most IRIS_MAX_JSON_BYTES
  (`413`; FastAPI would otherwise read any size into memory before authenticating the caller) and nested at
  most IRIS_MAX_JSON_DEPTH deep (`400`; deeper JSON would reach the parser's recursion limit, a 500).
  Uploads stream to disk with their own limit (uploads.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import error_body
from .http_protocol import HEALTH_PATHS
from .json_limits import too_deep
from .observability import REFUSED

_UPLOAD_PATH = re.compile(r"^/v1/models/[^/]+/versions/?$")
# Health checks must be answered by a busy store; long-polls of the change feed mostly wait (no thread, no work)
# and have their own bound (IRIS_MAX_CHANGE_WAITERS, api/changes.py).
_UNCOUNTED = HEALTH_PATHS | {"/v1/changes"}


async def _refuse(send: Any, status: int, message: str, retry_after: bool = False) -> None:
    body = json.dumps(error_body(status, message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # do not read (and throw away) the rest of a refused request's body
    ]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ConcurrencyLimit:
    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0  # one event loop per worker: no lock needed

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in _UNCOUNTED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            REFUSED.labels("concurrency").inc()
            await _refuse(send, 503, f"the store is handling {self.limit} requests; retry shortly", True)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and _UPLOAD_PATH.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        deep = too_deep(body, self.max_depth) if body else None
        if deep:
            REFUSED.labels("json_depth").inc()
            await _refuse(send, 400, f"request body: {deep}")
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: http.disconnect, as the server reports it

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        REFUSED.labels("json_bytes").inc()
        await _refuse(send, 413, f"the request body is larger than {self.max_bytes} bytes")
