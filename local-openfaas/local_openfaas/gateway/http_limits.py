"""What a request must meet before the gateway does any work on it, answered in JSON (as iris-server does).

- Request line or one header line longer than `max_line_bytes`, more than MAX_HEADER_LINES headers, or request
  line and headers together larger than `max_header_bytes`: `431`. aiohttp's parser bounds lines and the header
  count itself but answers a plain-text 400, so its refusal is rewritten in `handle_error`; the total is counted
  while a head streams in (so an incomplete head is never buffered past it) and measured on each parsed head (a
  head that arrives whole in one read is parsed whatever its size).
- Request line and headers not complete `header_timeout` seconds after their first byte (or after the
  connection opened): `408`, and the connection is closed. aiohttp's keep-alive timer would close such a
  connection only after keepalive_timeout (75 s), so a client trickling one header byte at a time (slowloris)
  could hold it that long.
- More than `max_concurrent` requests in flight (handlers running): `503` with `Retry-After: 1`, /healthz
  excepted (the kubelet must still get its answer from a busy gateway).

A head that arrives while the previous request on the same connection is still being handled (pipelining) is
neither timed nor counted until that handler finishes: the concurrency cap bounds those.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler, _ErrInfo  # _ErrInfo: how aiohttp queues a refused request

EXEMPT_PATHS = frozenset({"/healthz"})
MAX_HEADER_LINES = 128  # aiohttp's default; the byte total is the real bound
_PHRASES = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}


@dataclass(frozen=True)
class RequestLimits:
    max_header_bytes: int = 32 * 1024
    max_line_bytes: int = 8 * 1024
    header_timeout: float = 10.0
    max_concurrent: int = 256

    def too_large(self) -> str:
        return (f"the request line and headers are larger than the gateway's limit of {self.max_header_bytes} "
                f"bytes ({self.max_line_bytes} bytes per line, {MAX_HEADER_LINES} headers)")


class HeadTooLarge(BadHttpMessage):
    code = 431


def _raw_response(status: int, message: str) -> bytes:
    """A complete error answer that closes the connection, for when no request was parsed."""
    body = json.dumps({"message": message}).encode()
    head = (f"HTTP/1.1 {status} {_PHRASES[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def _head_size(message: RawRequestMessage) -> int:
    """The request line and headers as they were on the wire, give or take optional whitespace."""
    line = len(message.method) + len(message.path) + 11  # two spaces, "HTTP/1.1", CRLF
    return line + sum(len(name) + len(value) + 4 for name, value in message.raw_headers)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol with a header deadline and a header byte budget."""

    def __init__(self, manager: web.Server, *, limits: RequestLimits, **kwargs: Any) -> None:
        super().__init__(manager, max_line_size=limits.max_line_bytes, max_field_size=limits.max_line_bytes,
                         max_headers=MAX_HEADER_LINES, **kwargs)
        self._limits = limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._awaiting_head = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._end_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Idle between requests (start() waits for the next message): these bytes begin a new head.
        if not self._awaiting_head and self._waiter is not None and not self._waiter.done():
            self._start_head()
        parsed_before, queued_before = self._request_count, len(self._messages)
        super().data_received(data)
        if not self._awaiting_head:
            return
        if self._request_count > parsed_before:  # the head is in
            self._end_head()
            self._refuse_large_heads(queued_before)
        else:
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse_raw(431, self._limits.too_large())

    def _refuse_large_heads(self, queued_before: int) -> None:
        for index in range(queued_before, len(self._messages)):
            message, payload = self._messages[index]
            if isinstance(message, RawRequestMessage) and _head_size(message) > self._limits.max_header_bytes:
                refusal = self._limits.too_large()
                self._messages[index] = (_ErrInfo(status=431, exc=HeadTooLarge(refusal), message=refusal), payload)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status not in (400, 431):  # not a refused head: aiohttp's own answer
            return super().handle_error(request, status, exc, message)
        too_large = status == 431 or isinstance(exc, LineTooLong) or "Too many headers" in str(exc)
        if too_large:
            status, text = 431, self._limits.too_large()
        else:
            text = f"invalid HTTP request: {message or exc}"
        response = web.json_response({"message": text}, status=status)
        response.force_close()
        return response

    def _start_head(self) -> None:
        self._awaiting_head, self._head_bytes = True, 0
        self._head_timer = self._loop.call_later(self._limits.header_timeout, self._head_timed_out)

    def _end_head(self) -> None:
        self._awaiting_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head:
            self._refuse_raw(408, f"the request line and headers took longer than {self._limits.header_timeout:g}s")

    def _refuse_raw(self, status: int, message: str) -> None:
        self._end_head()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_raw_response(status, message))
            self.transport.close()
        self.force_close()


def bounded(handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
            max_concurrent: int) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """`handler` with at most `max_concurrent` calls running; the exempt paths always pass."""
    in_flight = 0

    async def limited(request: web.BaseRequest) -> web.StreamResponse:
        nonlocal in_flight
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        if in_flight >= max_concurrent:
            return web.json_response(
                {"message": f"the gateway has {max_concurrent} requests in flight, its limit; retry shortly"},
                status=503, headers={"Retry-After": "1"})
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return limited


class GuardedServer(web.Server):
    def __init__(self, *args: Any, limits: RequestLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, limits=self._limits, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """web.AppRunner whose connections are GuardedRequestHandlers and whose app is bounded()."""

    def __init__(self, app: web.Application, *, limits: RequestLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(bounded(plain.request_handler, self._limits.max_concurrent),
                             request_factory=plain.request_factory, handler_cancellation=plain.handler_cancellation,
                             loop=plain._loop, limits=self._limits, **plain._kwargs)
