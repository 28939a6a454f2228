"""Function state from the OpenFaaS gateway's REST API, for where there are no Function resources to read
(OpenFaaS CE, the operator's gatewayAPI mode): GET /system/functions?namespace= and GET
/system/function/<name>?namespace=, with the gateway's basic auth (the files of a mounted Secret, read at each
use, so a changed Secret is used without a restart).

Each report (faas-provider's FunctionStatus) is given a Function resource's shape, metadata and
status.replicas/availableReplicas, so the pages read both alike; its invocationCount comes along."""

from __future__ import annotations

from collections.abc import Callable

import httpx


class GatewayFunctionsError(Exception):
    """The gateway did not answer, refused the credentials (status 401/403) or failed; the message says which."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


def as_function(report: dict, namespace: str) -> dict:
    """A FunctionStatus in the shape of an openfaas.com/v1 Function (what overview.build reads)."""
    return {
        "metadata": {"name": report.get("name", ""), "namespace": report.get("namespace") or namespace},
        "status": {"replicas": report.get("replicas"), "availableReplicas": report.get("availableReplicas")},
        "invocationCount": report.get("invocationCount"),
    }


class GatewayFunctions:
    def __init__(self, url: str, credentials: Callable[[], tuple[str, str]], http: httpx.AsyncClient):
        self.url, self._credentials, self._http = url.rstrip("/"), credentials, http

    async def list(self, namespace: str) -> dict[tuple[str, str], dict]:
        """Every function the gateway runs in `namespace`, by (namespace, name)."""
        found = [as_function(r, namespace) for r in await self._get("/system/functions", namespace) or []]
        return {(f["metadata"]["namespace"], f["metadata"]["name"]): f for f in found}

    async def get(self, name: str, namespace: str) -> dict | None:
        report = await self._get(f"/system/function/{name}", namespace)
        return None if report is None else as_function(report, namespace)

    async def _get(self, path: str, namespace: str):
        """The JSON answer, or None for a 404."""
        where = f"the gateway at {self.url} ({path})"
        try:
            answer = await self._http.get(f"{self.url}{path}", params={"namespace": namespace},
                                          auth=self._credentials())
        except OSError as error:
            raise GatewayFunctionsError(None, f"the gateway's credentials cannot be read: {error}") from None
        except httpx.HTTPError as error:
            raise GatewayFunctionsError(None, f"{where} did not answer ({type(error).__name__})") from None
        if answer.status_code == 404:
            return None
        if answer.status_code in (401, 403):
            raise GatewayFunctionsError(answer.status_code, f"{where} refused the console's credentials "
                                                            f"({answer.status_code})")
        if answer.status_code != 200:
            raise GatewayFunctionsError(answer.status_code, f"{where} answered {answer.status_code} "
                                                            f"{answer.text.strip()[:200]}")
        return answer.json()
