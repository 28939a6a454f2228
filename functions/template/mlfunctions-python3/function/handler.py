"""The smallest function this template serves (what `faas-cli new --lang mlfunctions-python3` starts from)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": (await request.body()).decode("utf-8", "replace")})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ready": True})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", hello, methods=["POST"]), Route("/_/health", health)])
