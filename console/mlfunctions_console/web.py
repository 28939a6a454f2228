"""What every page shares: the templates, the signed-in check with its CSRF rule, security headers, and error
pages (a failure is a page that says what happened, never a stack trace)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from .advice import Problem
from .auth import COOKIE, Login

log = logging.getLogger("mlfunctions_console")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
PUBLIC = ("/login", "/healthz", "/static/")
MAX_BODY = 4 * 2**20  # a form with a 2 MiB picture, as a data: URL or an upload, fits
# Everything the pages use is served by the console itself: no CDN, no inline script or style.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def _ago(seconds_since_epoch: float | None) -> str:
    if not seconds_since_epoch:
        return ""
    seconds = max(0, time.time() - seconds_since_epoch)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


templates.env.filters["ago"] = _ago


def page(request: Request, template: str, status_code: int = 200, **context) -> Response:
    session = getattr(request.state, "session", None)
    login: Login = request.app.state.login
    context.setdefault("problems", [])
    return templates.TemplateResponse(
        request,
        template,
        {
            "csrf": login.csrf_token(session) if session else "",
            "signed_in": session is not None or getattr(request.state, "basic", False),
            **context,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def problem_page(request: Request, problem: Problem, status_code: int) -> Response:
    return page(request, "problem.html", status_code=status_code, problem=problem, title=problem.title)


def safe_next(target: str | None) -> str:
    """Only a path of this console (no scheme, no host, no //): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class SignedIn:
    """ASGI middleware: every path but /login, /healthz and /static/ needs the session cookie or HTTP Basic
    credentials; a POST from a cookie session also needs the page's CSRF token (checked by the handler's form
    read, see csrf_ok); a POST whose Origin is another site is refused outright."""

    def __init__(self, app: ASGIApp, login: Login):
        self.app, self.login = app, login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + HEADERS
            await send(message)

        request = Request(scope)
        path = scope["path"]
        if path.startswith(PUBLIC) or path == "/login":
            return await self.app(scope, receive, with_headers)
        if request.method == "POST" and int(request.headers.get("content-length") or 0) > MAX_BODY:
            return await JSONResponse(
                {"error": "too_large", "message": f"at most {MAX_BODY // 2**20} MiB"}, status_code=413
            )(scope, receive, with_headers)
        origin = request.headers.get("origin")
        if request.method == "POST" and origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return await JSONResponse(
                {"error": "forbidden", "message": "cross-site request refused"}, status_code=403
            )(scope, receive, with_headers)
        session = self.login.session(request.cookies.get(COOKIE))
        basic = session is None and self.login.check_basic(request.headers.get("authorization"))
        if session is None and not basic:
            if request.method == "GET" and "text/html" in request.headers.get("accept", "text/html"):
                target = path + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
                response = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            else:
                response = JSONResponse(
                    {
                        "error": "unauthorized",
                        "message": "sign in on /login, or send the "
                        "console's user and password as HTTP Basic credentials",
                    },
                    status_code=401,
                )
            return await response(scope, receive, with_headers)
        scope.setdefault("state", {})
        scope["state"]["session"] = session
        scope["state"]["basic"] = basic
        await self.app(scope, receive, with_headers)


def csrf_ok(request: Request, form) -> bool:
    """A cookie session's POST must carry the page's token; HTTP Basic callers are not browsers' ambient
    credentials (the console never asks a browser for them), so they need none."""
    session = getattr(request.state, "session", None)
    if session is None:
        return bool(getattr(request.state, "basic", False))
    presented = form.get("csrf") or request.headers.get("x-csrf-token")
    return request.app.state.login.csrf_ok(session, presented)


async def server_error(request: Request, error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    problem = Problem(
        "Something went wrong in the console",
        f"{type(error).__name__} (the console's log has the details)",
        ["Reload the page; if it persists, look at the console's log."],
    )
    try:
        return problem_page(request, problem, 500)
    except Exception:  # noqa: BLE001 -- the templates themselves failed: plain text, still no trace
        return Response(f"{problem.title}: {problem.detail}", status_code=500, media_type="text/plain")
