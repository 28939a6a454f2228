"""The OpenFaaS gateway: its Prometheus metrics (invocations, ready replicas, latency where it has them), and
calling a function through /function/<name>.<namespace>, timed.

The series are OpenFaaS's own names: gateway_function_invocation_total and gateway_service_count (which the
local OpenFaaS serves too), and the gateway_functions_seconds histogram (OpenFaaS's gateway; summed over
status codes)."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass

import httpx

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class GatewayError(Exception):
    """The gateway did not answer (or not with metrics)."""


@dataclass
class FunctionMetrics:
    invocations: float = 0.0
    ready_replicas: int | None = None
    seconds_sum: float = 0.0
    seconds_count: float = 0.0

    @property
    def mean_seconds(self) -> float | None:
        return self.seconds_sum / self.seconds_count if self.seconds_count else None


def parse_metrics(text: str) -> dict[str, FunctionMetrics]:
    """Per `<name>.<namespace>` (the gateway's function_name label)."""
    found: dict[str, FunctionMetrics] = defaultdict(FunctionMetrics)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        function = labels.get("function_name")
        if not function:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        entry = found[function]
        name = match["name"]
        if name == "gateway_function_invocation_total":
            entry.invocations += value
        elif name == "gateway_service_count":
            entry.ready_replicas = int(value)
        elif name == "gateway_functions_seconds_sum":
            entry.seconds_sum += value
        elif name == "gateway_functions_seconds_count":
            entry.seconds_count += value
    return dict(found)


@dataclass(frozen=True)
class Invocation:
    status: int | None  # None: no answer at all
    body: bytes
    content_type: str
    seconds: float  # as the console measured it, cold start included
    error: str = ""  # why there was no answer
    gateway_seconds: float | None = None  # the gateway's own measure (X-Duration-Seconds), when it sends one

    def json(self):
        return json.loads(self.body)


class Gateway:
    def __init__(self, url: str, metrics_url: str, http: httpx.AsyncClient, invoke_timeout: float):
        self.url, self.metrics_url = url.rstrip("/"), metrics_url
        self._http, self._invoke_timeout = http, invoke_timeout

    async def metrics(self) -> dict[str, FunctionMetrics]:
        try:
            answer = await self._http.get(self.metrics_url)
        except httpx.HTTPError as error:
            raise GatewayError(
                f"the gateway's metrics at {self.metrics_url} did not answer ({type(error).__name__})"
            ) from None
        if answer.status_code != 200:
            raise GatewayError(f"the gateway's metrics at {self.metrics_url} answered {answer.status_code}")
        return parse_metrics(answer.text)

    def function_url(self, name: str, namespace: str, path: str = "/") -> str:
        return f"{self.url}/function/{name}.{namespace}{path}"

    async def invoke(
        self,
        name: str,
        namespace: str,
        body: bytes,
        content_type: str,
        *,
        path: str = "/",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        timeout: float | None = None,
    ) -> Invocation:
        started = time.perf_counter()
        timeout = timeout or self._invoke_timeout
        try:
            answer = await self._http.request(
                method,
                self.function_url(name, namespace, path),
                content=body if method == "POST" else None,
                params=params,
                headers={"Content-Type": content_type, **(headers or {})},
                timeout=timeout,
            )
        except httpx.TimeoutException:
            return Invocation(
                None, b"", "", time.perf_counter() - started, f"no answer within {timeout:.0f}s"
            )
        except httpx.HTTPError as error:
            return Invocation(
                None,
                b"",
                "",
                time.perf_counter() - started,
                f"the gateway at {self.url} did not answer ({type(error).__name__})",
            )
        return Invocation(
            answer.status_code,
            answer.content,
            answer.headers.get("content-type", ""),
            time.perf_counter() - started,
            gateway_seconds=_seconds(answer.headers),
        )


def _seconds(headers: httpx.Headers) -> float | None:
    try:
        return float(headers["X-Duration-Seconds"])
    except (KeyError, ValueError):
        return None
