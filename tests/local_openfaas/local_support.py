"""Helpers shared by the local OpenFaaS tests (a module of its own: `conftest` is not importable by name when
every test folder has one). Waiting, ports and process checks come from the harness."""

from __future__ import annotations

from pathlib import Path

import requests
from local_openfaas import funcenv
from mlfunctions_harness.processes import descendants, pid_alive, wait_for
from prometheus_client.parser import text_string_to_metric_families

ECHO_DIR = Path(__file__).parent / "echo_function"
ECHO_IMAGE = "localhost/echo:test"
TRAIN_DIR = funcenv.FUNCTIONS_DIR / "train"
PREDICT_DIR = funcenv.FUNCTIONS_DIR / "predict"


def deploy(gw, name: str, env: dict | None = None, labels: dict | None = None, method: str = "POST", **extra):
    body = {"service": name, "image": ECHO_IMAGE, "envVars": env or {}, "labels": labels or {}, **extra}
    return requests.request(method, gw.url + "/system/functions", json=body, auth=gw.basic_auth, timeout=30)


def describe(gw, name: str) -> dict:
    response = requests.get(f"{gw.url}/system/function/{name}", auth=gw.basic_auth, timeout=10)
    response.raise_for_status()
    return response.json()


def metrics(gw) -> dict[str, float]:
    """The gateway's /metrics samples, by name with labels: {'gateway_service_count{function_name="x.ns"}': 1.0}."""
    response = requests.get(f"{gw.url}/metrics", timeout=10)
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def invocations(gw, function_name: str) -> float:
    """gateway_function_invocation_total of one function, summed over every status code."""
    prefix = 'gateway_function_invocation_total{code="'
    suffix = f'",function_name="{function_name}"}}'
    return sum(v for k, v in metrics(gw).items() if k.startswith(prefix) and k.endswith(suffix))


def stop_gateway(gw) -> None:
    """Stop a gateway process, then wait until every process it started (replicas, pool) has exited with it."""
    children = descendants(gw.process.pid)
    gw.stop()
    wait_for(lambda: not [pid for pid in children if pid_alive(pid)], timeout=10,
             what=f"the gateway's processes {children} to exit with it")
