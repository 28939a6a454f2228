"""The predict function's minimal ASGI layer, driven with ASGI messages as uvicorn sends them."""

from __future__ import annotations

import asyncio
import json

import function_harness  # noqa: F401  (puts the function folders on sys.path)
from asgi_json import HTTPError, JsonApp, Request


class Boom(Exception):
    pass


async def _echo(request: Request):
    return 200, {
        "params": request.params,
        "q": request.query("q"),
        "type": request.media_type,
        "body": (await request.body()).decode(),
    }


async def _teapot(request: Request):
    raise HTTPError(418, "short and stout", {"X-Why": "tea"})


async def _boom(request: Request):
    raise Boom("translated")


async def _bug(request: Request):
    raise KeyError("oops")


APP = JsonApp(
    [
        ("POST", "/", _echo),
        ("POST", "/v1/models/{model}:predict", _echo),
        ("GET", "/v1/models/{model}", _echo),
        ("GET", "/tea", _teapot),
        ("GET", "/boom", _boom),
        ("GET", "/bug", _bug),
    ],
    max_body=10,
    errors={Boom: lambda error: HTTPError(400, f"boom: {error}")},
)


def _call(method: str, path: str, chunks=(b"",), query: bytes = b"", headers=()) -> tuple[int, dict, dict]:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    asyncio.run(APP(scope, receive, send))
    start, body = sent
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert response_headers["content-type"] == "application/json"
    assert int(response_headers["content-length"]) == len(body["body"])
    return start["status"], json.loads(body["body"]), response_headers


def test_routes_with_parameters_query_and_chunked_body():
    status, body, _ = _call(
        "POST",
        "/v1/models/iris:predict",
        [b"ab", b"cd"],
        b"q=x%20y",
        [("content-type", "Application/JSON; charset=utf-8")],
    )
    assert status == 200
    assert body == {"params": {"model": "iris"}, "q": "x y", "type": "application/json", "body": "abcd"}
    assert _call("GET", "/v1/models/iris")[1]["params"] == {"model": "iris"}
    assert _call("POST", "/")[1]["params"] == {}


def test_unknown_path_and_method_are_json_errors():
    assert _call("GET", "/nope")[:2] == (404, {"error": "no such endpoint: GET /nope"})
    status, body, headers = _call("GET", "/")
    assert (status, body, headers["allow"]) == (405, {"error": "method GET is not allowed on /"}, "POST")


def test_body_over_the_limit_is_413_declared_or_streamed():
    declared = _call("POST", "/", [b"x"], headers=[("content-length", "11")])
    assert declared[:2] == (413, {"error": "the request body is larger than 10 bytes"})
    streamed = _call("POST", "/", [b"123456", b"789012"])
    assert streamed[0] == 413


def test_errors_raised_translated_and_unexpected():
    status, body, headers = _call("GET", "/tea")
    assert (status, body, headers["x-why"]) == (418, {"error": "short and stout"}, "tea")
    assert _call("GET", "/boom")[:2] == (400, {"error": "boom: translated"})
    assert _call("GET", "/bug")[:2] == (500, {"error": "internal error: KeyError: 'oops'"})


def test_lifespan_runs_the_hooks_and_reports_failures():
    events = []

    async def start():
        events.append("start")

    async def fail():
        raise RuntimeError("no model store configured")

    async def lifespan(app):
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent = []

        async def receive():
            return inbox.pop(0)

        async def send(message):
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
        return sent

    ok = asyncio.run(lifespan(JsonApp([], max_body=1, on_startup=start)))
    assert [m["type"] for m in ok] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["start"]
    failed = asyncio.run(lifespan(JsonApp([], max_body=1, on_startup=fail)))
    assert failed == [{"type": "lifespan.startup.failed", "message": "no model store configured"}]
