"""The OpenFaaS gateway's REST API, for deploying functions where there is no Function CRD (OpenFaaS CE):
POST/PUT/DELETE /system/functions with a FunctionDeployment, GET /system/function/<name>?namespace= and
GET /system/functions?namespace= for what is deployed. Asynchronous, one httpx.AsyncClient with basic auth
(gateway_credentials: from the mounted Secret's files, re-read when they change) and a timeout on every call.

Errors are typed by what the caller does about them and always name the gateway, so the MLFunction's condition
says which gateway is down or refused the credentials, and the next pass (back-off, then resync) recovers by
itself once it answers again.
"""

from __future__ import annotations

import httpx

from .gateway_credentials import CredentialsUnreadable

CONNECT_RETRIES = 2


class GatewayError(Exception):
    """Any failure talking to the gateway; `status` is the HTTP status or None when no answer came."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class GatewayUnavailable(GatewayError):
    """No answer (refused, timed out) or a 5xx: may clear by itself."""


class GatewayUnauthorized(GatewayError):
    """401/403, or the credential files unreadable: only a change of the Secret helps (read without a restart)."""


class GatewayRejected(GatewayError):
    """4xx other than auth and 404: the gateway refused the deployment (its message says why)."""


class GatewayClient:
    def __init__(self, url: str, auth: httpx.Auth, timeout: float):
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.url, auth=auth, timeout=timeout,
            transport=httpx.AsyncHTTPTransport(retries=CONNECT_RETRIES))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, *, json: dict | None = None,
                    params: dict | None = None) -> httpx.Response | None:
        """The response, or None for a 404."""
        what = f"{method} {self.url}{path}"
        try:
            response = await self._client.request(method, path, json=json, params=params)
        except CredentialsUnreadable as error:
            raise GatewayUnauthorized(f"{what} not sent: {error}") from None
        except httpx.TimeoutException:
            raise GatewayUnavailable(f"OpenFaaS gateway {self.url} did not answer {what} in time") from None
        except httpx.HTTPError as error:
            raise GatewayUnavailable(f"OpenFaaS gateway {self.url} is unreachable ({what}: "
                                     f"{type(error).__name__}: {error})") from None
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise GatewayUnauthorized(f"OpenFaaS gateway {self.url} answered {response.status_code} unauthorized "
                                      f"to {what}: check the basic-auth credentials in the operator's gateway "
                                      "Secret", response.status_code)
        if response.status_code >= 500:
            raise GatewayUnavailable(f"OpenFaaS gateway {self.url} failed {what}: {response.status_code} "
                                     f"{response.text.strip()[:200]}", response.status_code)
        if response.status_code >= 400:
            raise GatewayRejected(f"OpenFaaS gateway {self.url} refused {what}: {response.status_code} "
                                  f"{response.text.strip()[:200]}", response.status_code)
        return response

    async def get_function(self, name: str, namespace: str) -> dict | None:
        """types.FunctionStatus of a deployed function, or None when there is none."""
        response = await self._call("GET", f"/system/function/{name}", params={"namespace": namespace})
        return None if response is None else response.json()

    async def list_functions(self, namespace: str) -> list[dict]:
        response = await self._call("GET", "/system/functions", params={"namespace": namespace})
        return [] if response is None else list(response.json() or [])

    async def deploy(self, deployment: dict) -> None:
        """POST: a new function."""
        if await self._call("POST", "/system/functions", json=deployment) is None:
            raise GatewayRejected(f"OpenFaaS gateway {self.url} has no /system/functions", 404)

    async def update(self, deployment: dict) -> None:
        """PUT: replace a deployed function's deployment."""
        if await self._call("PUT", "/system/functions", json=deployment) is None:
            raise GatewayRejected(f"OpenFaaS gateway {self.url} does not know function "
                                  f"{deployment['service']} to update", 404)

    async def delete(self, name: str, namespace: str) -> bool:
        """DELETE; False when it was already gone."""
        response = await self._call("DELETE", "/system/functions", json={"functionName": name,
                                                                         "namespace": namespace})
        return response is not None
