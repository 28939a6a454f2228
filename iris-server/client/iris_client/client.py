"""HTTP client of the iris-server model store, shared by the ML functions and the operator.

Retries: idempotent calls (GET, PUT, DELETE) are retried on connection errors, timeouts and 5xx with
exponential backoff. Uploads carry an Idempotency-Key that the server honours, so a retried upload whose first
attempt did land returns that same version instead of creating a second one. Token creation has no such key
and is retried only when the connection could not even be opened (the request provably never reached the
server).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
import uuid
from typing import Any
from collections.abc import Iterable
from urllib.parse import quote

import requests
import urllib3

from .errors import Unavailable, error_for_status
from .models import Artifact, Change, ChangePage, IssuedToken, ModelVersion

log = logging.getLogger("iris_client")

VERSION_INFO_HEADER = "X-Model-Version-Info"
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 10.0
_DOWNLOAD_CHUNK = 1 << 20


def _never_sent(error: requests.RequestException) -> bool:
    """True when the connection could not be opened, so the server cannot have seen the request."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError) and error.args:
        reason = getattr(error.args[0], "reason", error.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def _refusal(response: requests.Response) -> tuple[str, str | None, dict[str, Any]]:
    """(message, error code, the other fields) of an error answer."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason or "no message", None, {}
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        details = {key: value for key, value in body.items() if key not in ("message", "error")}
        return body["message"], body.get("error"), details
    return json.dumps(body)[:500], None, {}


class ModelStoreClient:
    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = requests.Session()
        # Environment settings are resolved once here instead of on every request (trust_env re-reads proxies,
        # CA bundle and ~/.netrc per call: about half a millisecond, most of a warm 304 check). It also keeps
        # a ~/.netrc entry for the store's host from replacing the bearer token.
        self._session.trust_env = False
        self._session.proxies = requests.utils.get_environ_proxies(self.url)
        self._session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"ModelStoreClient(url={self.url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ModelStoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- health
    # ---------------------------------------------------------------------------------------------------

    def health(self) -> bool:
        """True when the store answers /readyz with 200. Never raises: a store that is down is not healthy."""
        try:
            response = self._session.get(f"{self.url}/readyz", timeout=self.timeout)
        except requests.RequestException:
            return False
        return response.status_code == 200

    # -- models and versions
    # --------------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/models").json()["models"]

    def list_versions(self, model: str) -> list[ModelVersion]:
        body = self._call("GET", f"/v1/models/{_seg(model)}/versions").json()
        return [ModelVersion.from_json(item) for item in body["versions"]]

    def get_version(self, model: str, version: int | str = "latest") -> ModelVersion:
        body = self._call("GET", f"/v1/models/{_seg(model)}/versions/{_seg(version)}").json()
        return ModelVersion.from_json(body)

    def download(self, model: str, version: int | str = "latest", etag: str | None = None) -> Artifact | None:
        """The artifact, or None when `etag` still matches (the server answered 304 Not Modified).

        The body is verified against the version's sha256; a transfer cut short or corrupted is fetched again.
        """
        path = f"/v1/models/{_seg(model)}/versions/{_seg(version)}/artifact"
        headers = {"If-None-Match": etag} if etag else {}
        for attempt in self._attempts():
            with self._call("GET", path, headers=headers, stream=True) as response:
                if response.status_code == 304:
                    return None
                info = ModelVersion.from_json(json.loads(response.headers[VERSION_INFO_HEADER]))
                try:
                    # 1 MiB reads: requests' default (10 KiB) spends more time in Python than on the wire.
                    data = b"".join(response.iter_content(chunk_size=_DOWNLOAD_CHUNK))
                except requests.RequestException as error:
                    problem = f"transfer interrupted: {error}"
                else:
                    if hashlib.sha256(data).hexdigest() == info.sha256:
                        return Artifact(data=data, etag=response.headers["ETag"], version=info)
                    problem = "sha256 mismatch"
            log.warning("artifact download failed, retrying", extra={"model": model, "problem": problem})
            if attempt == self.retries:
                raise Unavailable(f"artifact {model} v{info.version}: {problem} after {attempt + 1} tries")
            self._sleep(attempt, None)
        raise AssertionError("unreachable")

    def upload(
        self,
        model: str,
        data: bytes,
        format: str = "onnx",
        metadata: dict[str, Any] | None = None,
    ) -> ModelVersion:
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
            # One key for every attempt of this call: the server returns the version a lost answer had
            # created.
            "Idempotency-Key": uuid.uuid4().hex,
            "X-Model-Metadata": json.dumps(metadata or {}, ensure_ascii=True, separators=(",", ":")),
        }
        response = self._call(
            "POST",
            f"/v1/models/{_seg(model)}/versions",
            params={"format": format},
            data=data,
            headers=headers,
        )
        return ModelVersion.from_json(response.json())

    def set_alias(self, model: str, alias: str, version: int) -> None:
        self._call("PUT", f"/v1/models/{_seg(model)}/aliases/{_seg(alias)}", json={"version": int(version)})

    def delete_alias(self, model: str, alias: str) -> None:
        self._call("DELETE", f"/v1/models/{_seg(model)}/aliases/{_seg(alias)}")

    def delete_version(self, model: str, version: int) -> None:
        self._call("DELETE", f"/v1/models/{_seg(model)}/versions/{int(version)}")

    # -- the change feed
    # ------------------------------------------------------------------------------------------

    def changes(self, after: int | None = None, wait: float = 0.0) -> ChangePage:
        """The changes after cursor `after` of the models this token may read, waiting up to `wait` seconds
        (at most 60) for one when there is none; without `after`, no changes and the cursor of now. CursorGone
        (410, `.cursor`) when `after` is older than the store keeps: list again, then follow from `.cursor`."""
        params: dict[str, Any] = {} if after is None else {"after": int(after), "timeout": wait}
        body = self._call("GET", "/v1/changes", params=params, timeout=self.timeout + wait).json()
        changes = [Change.from_json(item) for item in body["changes"]]
        return ChangePage(changes=changes, cursor=int(body["cursor"]), more=bool(body.get("more")))

    # -- tokens (admin only)
    # --------------------------------------------------------------------------------------

    def create_token(
        self,
        models: Iterable[str],
        rights: Iterable[str] = ("read",),
        description: str = "",
        *,
        namespace: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> IssuedToken:
        """Rights: read, write (upload), delete (versions), alias. With `namespace` the token acts for that
        tenant (Forbidden, naming the model's owner, when the namespace may not use a model it names)."""
        payload: dict[str, Any] = {"models": list(models), "rights": list(rights), "description": description}
        if namespace is not None:
            payload["namespace"] = namespace
        if metadata:
            payload["metadata"] = dict(metadata)
        body = self._call("POST", "/v1/tokens", json=payload, retry_only_unsent=True).json()
        return IssuedToken(
            id=body["id"],
            token=body["token"],
            models=body["models"],
            rights=body["rights"],
            namespace=body.get("namespace"),
            metadata=body.get("metadata") or {},
        )

    def revoke_token(self, token_id: str) -> None:
        self._call("DELETE", f"/v1/tokens/{_seg(token_id)}")

    def list_tokens(self, namespace: str | None = None) -> list[dict[str, Any]]:
        params = {"namespace": namespace} if namespace else None
        return self._call("GET", "/v1/tokens", params=params).json()["tokens"]

    def whoami(self) -> dict[str, Any]:
        """The calling token's id, namespace, models, rights and metadata."""
        return self._call("GET", "/v1/whoami").json()

    # -- ownership and grants (admin only)
    # ------------------------------------------------------------------------

    def claim(self, model: str, namespace: str) -> dict[str, Any]:
        """Make `namespace` the model's owner (idempotent); Rejected (409, `owner` set) if another owns it."""
        return self._call("PUT", f"/v1/models/{_seg(model)}/owner", json={"namespace": namespace}).json()

    def owner(self, model: str) -> str | None:
        return self._call("GET", f"/v1/models/{_seg(model)}/owner").json()["owner"]

    def release(self, model: str) -> None:
        self._call("DELETE", f"/v1/models/{_seg(model)}/owner")

    def grant(self, model: str, namespace: str, rights: Iterable[str]) -> dict[str, list[str]]:
        """Set what `namespace` may do to `model`; returns every grant on the model."""
        path = f"/v1/models/{_seg(model)}/grants/{_seg(namespace)}"
        return self._call("PUT", path, json={"rights": list(rights)}).json()["grants"]

    def revoke_grant(self, model: str, namespace: str) -> None:
        self._call("DELETE", f"/v1/models/{_seg(model)}/grants/{_seg(namespace)}")

    def grants(self, model: str) -> dict[str, list[str]]:
        return self._call("GET", f"/v1/models/{_seg(model)}/grants").json()["grants"]

    def ownership(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every owned, granted or existing model (or those `namespace` owns or is granted)."""
        params = {"namespace": namespace} if namespace else None
        return self._call("GET", "/v1/ownership", params=params).json()["models"]

    # -- transport
    # ------------------------------------------------------------------------------------------------

    def _attempts(self) -> range:
        return range(self.retries + 1)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER_SECONDS))
        time.sleep(delay)

    def _call(
        self, method: str, path: str, *, retry_only_unsent: bool = False, **kwargs: Any
    ) -> requests.Response:
        """One logical call, retried as the module docstring says; 4xx raise their typed error at once."""
        url = f"{self.url}{path}"
        timeout = kwargs.pop("timeout", self.timeout)  # a long-poll's read lasts longer than other calls
        for attempt in self._attempts():
            last = attempt == self.retries
            try:
                response = self._session.request(method, url, timeout=timeout, **kwargs)
            except requests.RequestException as error:
                if last or (retry_only_unsent and not _never_sent(error)):
                    raise Unavailable(f"{method} {path}: model store unreachable: {error}") from error
                log.info(
                    "model store unreachable, retrying", extra={"method": method, "attempt": attempt + 1}
                )
                self._sleep(attempt, None)
                continue
            status = response.status_code
            if status < 400 or status == 304:
                return response
            if status in _RETRY_STATUSES and not retry_only_unsent and not last:
                log.info(
                    "model store answered %s, retrying",
                    status,
                    extra={"method": method, "attempt": attempt + 1},
                )
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            message, code, details = _refusal(response)
            raise error_for_status(status, f"{method} {path}: {message}", code, details)
        raise AssertionError("unreachable")


def _seg(value: int | str) -> str:
    """One URL path segment: a name with '/' or '..' in it stays one (invalid) segment the server refuses."""
    return quote(str(value), safe="")
