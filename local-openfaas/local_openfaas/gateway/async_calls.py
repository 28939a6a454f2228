"""/async-function/<name>: OpenFaaS's asynchronous invocation, with the queue in the gateway instead of NATS and a
queue-worker. The call is answered 202 with `X-Call-Id` at once and queued (bounded: a full queue answers 429);
workers invoke the function as /function/<name> would, and when the caller gave `X-Callback-Url` they POST the
function's answer to it as the queue-worker does: its body and Content-Type, with `X-Call-Id`,
`X-Function-Status` (the function's status code, or the gateway's when the function could not be reached),
`X-Function-Name`, `X-Duration-Seconds` and `X-Start-Time`.

A callback is a request the gateway makes on its caller's behalf, from inside the network it can reach (SSRF): the
callback's host must resolve only to addresses in `callback_networks` (loopback by default, --async-callback-network
widens it), checked when the call is accepted and again when the callback connects (so a name that resolves
elsewhere later is still refused), and redirects are not followed."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

log = logging.getLogger("mlfunctions.gateway.async")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CallbackRefused(ValueError):
    pass


@dataclass
class AsyncCall:
    call_id: str
    namespace: str
    name: str
    method: str
    target: str                          # path and query for the function
    headers: list[tuple[str, str]]
    body: bytes
    callback_url: str | None
    queued_at: float = field(default_factory=time.time)


# What the worker calls: (call) -> (status, content type, body), the function's answer or the gateway's error.
Invoke = Callable[[AsyncCall], Awaitable[tuple[int, str, bytes]]]


def _allowed(address: str, networks: tuple[Network, ...]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return any(ip in network for network in networks)


async def check_callback(url: str, networks: tuple[Network, ...]) -> None:
    """Raise CallbackRefused unless `url` is http(s) to a host whose every address is in `networks`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused(f"X-Callback-Url must be an http(s) URL with a host, not {url!r}")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 80,
                                                             type=socket.SOCK_STREAM)
    except OSError as error:
        raise CallbackRefused(f"X-Callback-Url host {parts.hostname!r} does not resolve: {error}") from None
    outside = sorted({info[4][0] for info in infos if not _allowed(info[4][0], networks)})
    if outside or not infos:
        raise CallbackRefused(f"X-Callback-Url host {parts.hostname!r} resolves to {outside}, outside the networks "
                              f"callbacks may reach ({', '.join(map(str, networks))}; see --async-callback-network)")


class _AllowedResolver(AbstractResolver):
    """Resolves as usual and keeps only allowed addresses, so the connection goes where the check said."""

    def __init__(self, networks: tuple[Network, ...]):
        self._inner, self._networks = DefaultResolver(), networks

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        kept = [r for r in await self._inner.resolve(host, port, family) if _allowed(r["host"], self._networks)]
        if not kept:
            raise OSError(f"callback host {host} resolves outside the allowed networks")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class AsyncCalls:
    def __init__(self, invoke: Invoke, *, queue_size: int = 256, workers: int = 4,
                 callback_networks: tuple[Network, ...] = LOOPBACK, callback_timeout: float = 30.0):
        self._invoke = invoke
        self.callback_networks = callback_networks
        self._queue: asyncio.Queue[AsyncCall] = asyncio.Queue(maxsize=queue_size)
        self._workers_wanted, self._callback_timeout = workers, callback_timeout
        self._workers: list[asyncio.Task] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self, _app=None) -> None:
        connector = aiohttp.TCPConnector(resolver=_AllowedResolver(self.callback_networks))
        self._session = aiohttp.ClientSession(connector=connector)
        self._workers = [asyncio.create_task(self._work(), name=f"async-worker-{n}")
                         for n in range(self._workers_wanted)]

    async def close(self, _app=None) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def submit(self, call: AsyncCall) -> bool:
        """Queue the call; False when the queue is full."""
        try:
            self._queue.put_nowait(call)
        except asyncio.QueueFull:
            return False
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            call = await self._queue.get()
            try:
                await self._run(call)
            except Exception:
                log.exception("async call failed", extra={"callId": call.call_id, "function": call.name})
            finally:
                self._queue.task_done()

    async def _run(self, call: AsyncCall) -> None:
        started = time.perf_counter()
        status, content_type, body = await self._invoke(call)
        duration = time.perf_counter() - started
        log.info("async call done", extra={"callId": call.call_id, "function": call.name, "status": status,
                                           "seconds": round(duration, 6)})
        if not call.callback_url:
            return
        headers = {"X-Call-Id": call.call_id, "X-Function-Status": str(status),
                   "X-Function-Name": call.name, "X-Duration-Seconds": f"{duration:.6f}",
                   "X-Start-Time": str(int(call.queued_at * 1e9))}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            await check_callback(call.callback_url, self.callback_networks)
            async with self._session.post(call.callback_url, data=body, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=self._callback_timeout)) as answer:
                await answer.read()
                log.info("callback posted", extra={"callId": call.call_id, "status": answer.status})
        except (CallbackRefused, aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            log.warning("callback failed", extra={"callId": call.call_id, "error": repr(error)})
