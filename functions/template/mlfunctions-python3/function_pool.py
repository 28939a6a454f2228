"""Pool mode: a replica started before any function needs it, which becomes exactly one function when told to
(Fission's poolmgr calls this specialization). index.py serves PoolApp instead of the handler's app when
$MLFUNCTIONS_POOL_TOKEN_FILE is set (the local OpenFaaS's pod pool sets it; nothing else does).

Before: the interpreter has started and the handler's module (with everything it imports: onnxruntime, numpy,
scikit-learn) is imported; GET /_/pool/health answers 200 (the pool Deployment's readiness probe) and everything
else 503. `POST /_/specialize` with the pool's token (`Authorization: Bearer`, the file's content) and
{"env": {name: value}, "secrets": {file: base64}} writes the secrets into a private folder under $TMPDIR (what
OpenFaaS mounts at /var/openfaas/secrets), sets the variables, builds the function's app and runs its start-up;
from then on every request is the function's. It happens once: a second call is 409, and a replica whose
specialization failed serves nothing (the pool deletes it). The replica is never handed back to the pool."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import importlib
import json
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import function_metrics

MAX_BODY = 1024 * 1024        # variables and secrets of one function: far below this
_SECRET_FILE = re.compile(r"[A-Za-z0-9._-]{1,253}")  # a Secret key (what a projected volume names its file)
Scope, Receive, Send = dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]


class PoolApp:
    def __init__(self, token_file: Path):
        self._token = token_file.read_text().strip().encode()
        self._app = None        # the function's app, once specialized
        self._lifespan: _Lifespan | None = None
        self._state = "waiting"  # waiting -> specializing -> serving | failed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._root_lifespan(receive, send)
        if self._app is not None:
            if scope["type"] == "http" and scope["path"] == "/_/specialize":
                return await _answer(send, 409, {"message": "this replica already serves a function"})
            return await self._app(scope, receive, send)
        if scope["type"] != "http":
            return
        if scope["path"] == "/_/pool/health" and self._state == "waiting":
            return await _answer(send, 200, {"pool": "waiting"})
        if scope["path"] == "/_/specialize" and scope["method"] == "POST":
            return await self._specialize(scope, receive, send)
        await _answer(send, 503, {"message": f"pool replica not serving a function ({self._state})"})

    async def _root_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._lifespan is not None:
                    await self._lifespan.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _specialize(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        presented = headers.get(b"authorization", b"").removeprefix(b"Bearer ").strip()
        if not hmac.compare_digest(presented, self._token):
            return await _answer(send, 401, {"message": "specialization needs the pool's token"})
        if self._state != "waiting":
            return await _answer(send, 409, {"message": f"this replica cannot be specialized ({self._state})"})
        body = await _body(receive)
        try:
            env, secrets = _assignment(body)
        except ValueError as error:
            return await _answer(send, 400, {"message": str(error)})
        self._state = "specializing"
        started = time.monotonic()
        try:
            folder = Path(tempfile.mkdtemp(prefix="openfaas-secrets-"))  # 0700
            for name, value in secrets.items():
                path = folder / name
                path.write_bytes(value)
                path.chmod(0o400)
            os.environ.update(env)
            os.environ["OPENFAAS_SECRETS_DIR"] = str(folder)
            app = function_metrics.MetricsMiddleware(importlib.import_module("handler").create_app())
            self._lifespan = _Lifespan(app)
            await self._lifespan.startup()
        except Exception as error:  # the function's configuration error: this replica is spent
            self._state = "failed"
            return await _answer(send, 422, {"message": f"the function did not start: {error}"})
        self._app, self._state = app, "serving"
        await _answer(send, 200, {"specialized": True, "seconds": round(time.monotonic() - started, 4)})


def _assignment(body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError('expected a JSON body {"env": {name: value}, "secrets": {file: base64}}') from None
    env, secrets = (payload.get("env") or {}, payload.get("secrets") or {}) if isinstance(payload, dict) else (0, 0)
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError('"env" must map variable names to strings')
    if not isinstance(secrets, dict):
        raise ValueError('"secrets" must map file names to base64 strings')
    files = {}
    for name, value in secrets.items():
        if not isinstance(name, str) or not _SECRET_FILE.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"invalid secret file name {name!r}")
        try:
            files[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError):
            raise ValueError(f"secret {name!r} is not base64") from None
    return env, files


class _Lifespan:
    """The function app's lifespan, driven as uvicorn drives the root app's: start-up now, shut-down with ours."""

    def __init__(self, app):
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                                self._inbox.get, self._outbox.put))

    async def _step(self, message: str) -> None:
        await self._inbox.put({"type": message})
        answer = asyncio.ensure_future(self._outbox.get())
        await asyncio.wait({answer, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():  # the app returned without answering: it does not speak lifespan
            answer.cancel()
            return
        if answer.result()["type"].endswith(".failed"):
            raise RuntimeError(answer.result().get("message") or f"{message} failed")

    async def startup(self) -> None:
        await self._step("lifespan.startup")

    async def shutdown(self) -> None:
        if not self._task.done():
            await self._step("lifespan.shutdown")


async def _body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return b"{"  # refused as invalid JSON, before more is read
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def preload() -> None:
    """Import the handler's module (and so its libraries) now, so that specialization only builds the app."""
    importlib.import_module("handler")
