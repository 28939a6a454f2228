"""Reading the model store (iris-server) with a read-only token: models, their versions and aliases.

Errors come back as StoreError with a kind the pages explain (down, token refused, not allowed, not found)."""

from __future__ import annotations

from typing import Any

import httpx


class StoreError(Exception):
    """kind: unconfigured | unreachable | unauthorized | forbidden | not_found | failed."""

    def __init__(self, kind: str, message: str, url: str = ""):
        super().__init__(message)
        self.kind, self.url = kind, url


class Store:
    def __init__(self, url: str, token: str, http: httpx.AsyncClient):
        self.url, self._token, self._http = url.rstrip("/"), token, http

    async def models(self) -> list[dict[str, Any]]:
        return (await self._get("/v1/models"))["models"]

    async def versions(self, model: str) -> list[dict[str, Any]]:
        return (await self._get(f"/v1/models/{model}/versions"))["versions"]

    async def version(self, model: str, ref: str | int) -> dict[str, Any]:
        return await self._get(f"/v1/models/{model}/versions/{ref}")

    async def _get(self, path: str) -> dict[str, Any]:
        if not self.url:
            raise StoreError(
                "unconfigured",
                "no model store URL: the default ModelStore has no status.url yet "
                "and CONSOLE_STORE_URL is not set",
            )
        if not self._token:
            raise StoreError("unconfigured", "the console has no read token for the model store", self.url)
        try:
            answer = await self._http.get(self.url + path, headers={"Authorization": f"Bearer {self._token}"})
        except httpx.HTTPError as error:
            raise StoreError(
                "unreachable",
                f"the model store at {self.url} did not answer ({type(error).__name__})",
                self.url,
            ) from None
        if answer.status_code == 200:
            return answer.json()
        try:
            message = answer.json().get("message", "")
        except ValueError:
            message = answer.text[:200]
        kind = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(answer.status_code, "failed")
        raise StoreError(kind, f"the model store answered {answer.status_code}: {message}", self.url)
