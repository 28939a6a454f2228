"""uvicorn's h11 protocol with the bounds a request must meet before the app sees it, answered in JSON.

- Request line and headers larger than IRIS_MAX_HEADER_BYTES: `431`. h11 bounds what it buffers of an
  incomplete head (max_incomplete_event_size) and names the status in its error, but a head that arrives whole
  in one read is parsed whatever its size, so each parsed request's head is measured too; uvicorn would answer
  a plain-text 400 either way.
- Request line and headers not received within IRIS_HEADER_TIMEOUT_SECONDS of their first byte (or of the
  connection opening): `408`, and the connection is closed. uvicorn has no such timer, so a client trickling
  one header byte at a time (slowloris) would hold its connection forever.
- Connections beyond IRIS_MAX_CONNECTIONS (per worker): their requests are answered `503` and the connection
  closed, health checks excepted (the kubelet must still get its answer from a busy store).

The h11 implementation is used rather than httptools because only it bounds header size.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .change_feed import SIGNAL
from .errors import error_body
from .observability import REFUSED

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int  # also uvicorn's h11_max_incomplete_event_size (see __main__)
    header_timeout_seconds: float
    max_connections: int


def raw_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 error answer that closes the connection, for when no request was parsed."""
    body = json.dumps(error_body(status, message)).encode()
    phrase = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large"}[status]
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def _head_size(request: h11.Request) -> int:
    """The request line and headers as they were on the wire, give or take optional whitespace."""
    line = len(request.method) + len(request.target) + 11  # two spaces, "HTTP/1.1", CRLF
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers.raw_items())


class GuardedH11Protocol(H11Protocol):
    """One per connection, as uvicorn makes them; `limits` is bound with functools.partial (see __main__)."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusal: h11.RemoteProtocolError | None = None
        parse = self.conn.next_event
        max_head = limits.max_header_bytes

        def next_event():  # remember why a request was refused, for send_400_response
            try:
                event = parse()
                if isinstance(event, h11.Request) and _head_size(event) > max_head:
                    raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
                return event
            except h11.RemoteProtocolError as error:
                self._refusal = error
                raise

        self.conn.next_event = next_event

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self.app = _OverCapacity(self.app, self._limits.max_connections)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._cancel_header_timer()

    def shutdown(self) -> None:
        """uvicorn stops: it calls this on every open connection, then waits for their requests. Waiting
        long-polls of the change feed answer now instead of at their timeout."""
        SIGNAL.drain()
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        status = getattr(self._refusal, "error_status_hint", 400)
        if status == 431:
            REFUSED.labels("header_bytes").inc()
            message = f"the request line and headers are larger than {self._limits.max_header_bytes} bytes"
        else:
            status, message = 400, f"invalid HTTP request: {self._refusal or msg}"
        self.transport.write(raw_response(status, message))
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self._limits.header_timeout_seconds, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            REFUSED.labels("header_timeout").inc()
            seconds = self._limits.header_timeout_seconds
            self.transport.write(
                raw_response(408, f"the request line and headers took longer than {seconds:g}s")
            )
            self.transport.close()


class _OverCapacity:
    """The app of a connection beyond the limit: health checks pass, anything else is 503 and closes."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("path") in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        REFUSED.labels("connections").inc()
        body = json.dumps(
            error_body(503, f"the store has more than {self.limit} open connections; retry shortly")
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
