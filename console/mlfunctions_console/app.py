"""The console's ASGI app: routes, the sign-in middleware, and what lives as long as the process (the clients,
the training jobs, a sampler of the gateway's counters for "recent invocations")."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import kube, pages
from .auth import Login, Throttle
from .services import Services
from .settings import Settings
from .triggers import Jobs
from .web import HERE, SignedIn, server_error

log = logging.getLogger("mlfunctions_console")
SAMPLE_SECONDS = 15.0


def create_app(settings: Settings, credentials: kube.Credentials) -> Starlette:
    login = Login(settings.username, settings.password, settings.session_hours * 3600)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        http = httpx.AsyncClient(timeout=settings.request_timeout)
        services = Services(settings, kube.Kube(credentials, settings.request_timeout), http)
        app.state.services, app.state.jobs = services, Jobs(services)
        sampler = asyncio.create_task(_sample(services))
        try:
            yield
        finally:
            sampler.cancel()
            await app.state.jobs.close()
            await services.close()

    routes = [
        Route("/", pages.functions_page),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/functions/{namespace}/{name}", pages.function_page),
        Route("/functions/{namespace}/{name}/predict", pages.predict, methods=["POST"]),
        Route("/functions/{namespace}/{name}/train", pages.train, methods=["POST"]),
        Route("/jobs/{job}", pages.job_page),
        Route("/jobs/{job}/status", pages.job_status),
        Route("/models", pages.models_page),
        Route("/healthz", pages.healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SignedIn, login=login)],
        exception_handlers={Exception: server_error},
    )
    app.state.login, app.state.throttle = login, Throttle()
    return app


async def _sample(services: Services) -> None:
    """The gateway's invocation counters every few seconds: "recent" spans a window even when nobody looks."""
    while True:
        await services.metrics()
        await asyncio.sleep(SAMPLE_SECONDS)
