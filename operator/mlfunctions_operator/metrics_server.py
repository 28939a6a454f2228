"""The HTTP server of GET /metrics (Prometheus text format), started by the kopf startup handler.

When it shares its address with the health endpoint (the default: both on 0.0.0.0:8080, controller-runtime's
metrics port), it serves GET /healthz too, in place of kopf's liveness server: it is started once the startup
handler has set everything up, which is when kopf's own would answer.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


async def start(registry: CollectorRegistry, address: str, healthz: bool) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def health(_: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    if healthz:
        app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = address.rpartition(":")
    await web.TCPSite(runner, host or "0.0.0.0", int(port)).start()
    return runner
