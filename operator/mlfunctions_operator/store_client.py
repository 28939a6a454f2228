"""The model-store calls the operator makes (issue, list and revoke tokens; claim models and grant them to other
namespaces; look a model version up), asynchronous.

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
    """Any failure talking to a model store. `status` is the HTTP status, or None if no answer came; `code` the
    store's error code (e.g. owned) and `details` the other fields of its answer (a refusal for tenancy names
    `model`, `owner`, `namespace` and `right`)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or {}

    @property
    def tenancy(self) -> bool:
        """The store refused because of who owns the model (not because of the token's own scope)."""
        return "namespace" in self.details and "model" in self.details

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


class Unauthorized(ModelStoreError):
    """401: the token is missing, unknown or revoked."""


class Forbidden(ModelStoreError):
    """403: the token is valid but not allowed this call."""


class NotFound(ModelStoreError):
    """404: no such model, version or token."""


class Conflict(ModelStoreError):
    """409: e.g. a claim of a model another namespace owns (`details["owner"]`)."""


class CursorGone(ModelStoreError):
    """410 from the change feed: the cursor is older than the store keeps (or from another store); go on from
    `cursor` after looking at everything again."""

    @property
    def cursor(self) -> int:
        return int(self.details["cursor"])


class Unavailable(ModelStoreError):
    """The store could not be reached, timed out, or answered 5xx."""


_BY_STATUS: dict[int, type[ModelStoreError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
                                                410: CursorGone}


def error_for_status(status: int, message: str, code: str | None = None,
                     details: dict | None = None) -> ModelStoreError:
    if status >= 500:
        return Unavailable(message, status, code, details)
    return _BY_STATUS.get(status, ModelStoreError)(message, status, code, details)


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


@dataclass(frozen=True)
class ChangePage:
    """One answer of the store's change feed: the models that changed (in order, repeats included) and the cursor
    to ask with next."""

    models: tuple[str, ...]
    cursor: int


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

    async def create_token(self, models: tuple[str, ...], rights: tuple[str, ...], description: str, *,
                           namespace: str | None = None, metadata: dict[str, str] | None = None) -> IssuedToken:
        """A token for `models`; with `namespace` it acts for that tenant, and the store refuses to mint it (403,
        a tenancy error) when the namespace may not have these rights on these models."""
        request: dict[str, Any] = {"models": list(models), "rights": list(rights), "description": description}
        if namespace is not None:
            request.update(namespace=namespace, metadata=metadata or {})
        body = await self._call("POST", "/v1/tokens", request)
        return IssuedToken(id=body["id"], token=body["token"])

    async def claim_model(self, model: str, namespace: str) -> bool:
        """Make `namespace` the model's owner: True if it was claimed now, False if it already owned it. Raises
        Conflict (details["owner"]) when another namespace owns it."""
        response = await self._request("PUT", f"/v1/models/{_segment(model)}/owner", {"namespace": namespace})
        return response.status_code == 201

    async def writers(self, model: str) -> list[dict]:
        """`written_by` of every version of the model (token_id, namespace, description, metadata); [] when the
        model has none."""
        try:
            body = await self._call("GET", f"/v1/models/{_segment(model)}/versions")
        except NotFound:
            return []
        return [version.get("written_by") or {} for version in body["versions"]]

    async def ownership(self) -> list[dict]:
        """Every model that exists, has an owner or has grants: {model, owner, grants: {namespace: rights}}."""
        return (await self._call("GET", "/v1/ownership"))["models"]

    async def grant(self, model: str, namespace: str, rights: tuple[str, ...]) -> None:
        await self._call("PUT", f"/v1/models/{_segment(model)}/grants/{_segment(namespace)}", {"rights": list(rights)})

    async def revoke_grant(self, model: str, namespace: str) -> None:
        try:
            await self._call("DELETE", f"/v1/models/{_segment(model)}/grants/{_segment(namespace)}")
        except NotFound:
            pass  # already gone

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

    async def changes(self, after: int | None, wait: float = 0.0) -> ChangePage:
        """The store's change feed (GET /v1/changes): the changes after cursor `after`, waiting up to `wait` s for
        one; without `after`, none and the cursor of now. CursorGone when the store no longer has `after`."""
        params = {} if after is None else {"after": after, "timeout": wait}
        timeout = (self.http.timeout.read or 0.0) + wait  # the answer may take `wait` longer than other calls
        response = await self._request("GET", "/v1/changes", params=params, timeout=timeout)
        body = response.json()
        return ChangePage(tuple(change["model"] for change in body["changes"]), int(body["cursor"]))

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._request(method, path, body)
        return response.json() if response.content else None

    async def _request(self, method: str, path: str, body: Any = None, **options: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, f"{self.url}{path}", json=body, headers=self._headers,
                                               **options)
        except httpx.HTTPError as error:  # connect, timeouts, a connection dropped before the answer
            raise Unavailable(f"{method} {path}: model store unreachable: {type(error).__name__}: {error}") \
                from error
        if response.status_code >= 400:
            message, code, details = _problem(response)
            raise error_for_status(response.status_code, f"{method} {path}: {message}", code, details)
        return response


def _problem(response: httpx.Response) -> tuple[str, str | None, dict]:
    """(message, error code, the other fields) of an error answer."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase or "no message", None, {}
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("error") if isinstance(body.get("error"), str) else None
        return body["message"], code, {k: v for k, v in body.items() if k not in ("message", "error")}
    return json.dumps(body)[:500], None, {}


def _segment(value: int | str) -> str:
    """One URL path segment: a name with '/' or '..' in it stays one (invalid) segment the store refuses."""
    return quote(str(value), safe="")
