"""The model-store calls the operator makes (issue, list and revoke tokens; look a model version up), asynchronous.

One httpx.AsyncClient serves every store and every token: the token goes on each request, so keep-alive
connections are shared and kept by one pool, and the event loop never waits on a slow or unreachable store. The
transport retries only a connection that could not be opened (the request never left, so even issuing a token is
safe to repeat: it cannot issue two); any other failure is reported at once, and the reconcile loop's back-off
spaces out the next attempt. Errors are typed by what the caller does about them, never by message text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

# A store restarting refuses connections for a moment: two quick retries of the connect ride that out.
CONNECT_RETRIES = 2


class ModelStoreError(Exception):
    """Any failure talking to a model store. `status` is the HTTP status, or None if no answer came."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


class Unauthorized(ModelStoreError):
    """401: the token is missing, unknown or revoked."""


class Forbidden(ModelStoreError):
    """403: the token is valid but not allowed this call."""


class NotFound(ModelStoreError):
    """404: no such model, version or token."""


class Unavailable(ModelStoreError):
    """The store could not be reached, timed out, or answered 5xx."""


_BY_STATUS: dict[int, type[ModelStoreError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound}


def error_for_status(status: int, message: str) -> ModelStoreError:
    if status >= 500:
        return Unavailable(message, status)
    return _BY_STATUS.get(status, ModelStoreError)(message, status)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued scoped token. `token` is the secret: the store keeps only its hash."""

    id: str
    token: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"IssuedToken(id={self.id!r}, token='***')"


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int


def http_client(timeout: float, connections: int) -> httpx.AsyncClient:
    """The operator's one client for every model store; closed when the operator stops.

    Not trusting the environment keeps proxies and ~/.netrc out of in-cluster calls (a private CA of an external
    store still comes from SSL_CERT_FILE or SSL_CERT_DIR, which the TLS context reads on its own)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.AsyncHTTPTransport(retries=CONNECT_RETRIES, limits=limits)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)


class StoreClient:
    """One store's API as one token sees it, over the shared client (cheap: make one wherever it is needed)."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str):
        self.http = http
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"StoreClient(url={self.url!r})"

    async def create_token(self, models: tuple[str, ...], rights: tuple[str, ...], description: str) -> IssuedToken:
        body = await self._call("POST", "/v1/tokens", {"models": list(models), "rights": list(rights),
                                                       "description": description})
        return IssuedToken(id=body["id"], token=body["token"])

    async def revoke_token(self, token_id: str) -> None:
        try:
            await self._call("DELETE", f"/v1/tokens/{_segment(token_id)}")
        except NotFound:
            pass  # already gone: revoking is idempotent

    async def list_tokens(self) -> list[dict]:
        return (await self._call("GET", "/v1/tokens"))["tokens"]

    async def get_version(self, model: str, version: int | str) -> ModelVersion | None:
        """The version (an integer, or an alias such as latest), or None if the store has no such version."""
        try:
            body = await self._call("GET", f"/v1/models/{_segment(model)}/versions/{_segment(version)}")
        except NotFound:
            return None
        return ModelVersion(model=body["model"], version=int(body["version"]))

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = await self.http.request(method, f"{self.url}{path}", json=body, headers=self._headers)
        except httpx.HTTPError as error:  # connect, timeouts, a connection dropped before the answer
            raise Unavailable(f"{method} {path}: model store unreachable: {type(error).__name__}: {error}") \
                from error
        if response.status_code >= 400:
            raise error_for_status(response.status_code, f"{method} {path}: {_message(response)}")
        return response.json() if response.content else None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase or "no message"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return json.dumps(body)[:500]


def _segment(value: int | str) -> str:
    """One URL path segment: a name with '/' or '..' in it stays one (invalid) segment the store refuses."""
    return quote(str(value), safe="")
