"""A predict function's cold start through the local gateway on its pods backend: the function scaled to zero
by the gateway's autoscaler (idle), then one request to /function/<name>.<namespace>, held by the gateway until
a pod answers. Split into parts from a pod watch (this machine's wall clock, as cold_start.py):

    without the pool:  scheduled (the request -> the new pod bound), pod_ip (-> it has an address: sandbox and
                       network), answered (-> the answer arrives: container start, imports, model, the gateway's
                       own health probe, the proxied request)
    with the pool:     claimed (the request -> a pool pod relabelled for the function), answered (-> the answer:
                       specialization — variables, secrets, the app and its model — and the proxied request)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from kubernetes import client

from node_bench.cold_start import PodEvents

CLAIMED_LABEL = "pool.local-openfaas/function"  # local_openfaas.pods.pool_objects.CLAIMED_LABEL


def measure(core: client.CoreV1Api, namespace: str, function: str, wait_scaled_to_zero: Callable[[], None],
            call: Callable[[], requests.Response], correct: Callable[[dict], bool], pool: bool) -> dict:
    wait_scaled_to_zero()
    selector = f"{CLAIMED_LABEL}={function}" if pool else f"faas_function={function}"
    listing = core.list_namespaced_pod(namespace, label_selector=selector)
    pods = PodEvents(core, namespace, selector, listing.metadata.resource_version)
    pods.skip = {p.metadata.name for p in listing.items}
    pods.start()
    began = time.time()
    answer = call()
    answered = time.time()
    if answer.status_code != 200 or not correct(answer.json()):
        raise AssertionError(f"cold start answered {answer.status_code}: {answer.text[:300]}")
    deadline = time.monotonic() + 30
    wanted = "pod_ip" if not pool else "seen"
    while wanted not in pods.times and time.monotonic() < deadline:
        time.sleep(0.01)
    marks = [("scheduled", pods.times.get("scheduled")), ("pod_ip", pods.times.get("pod_ip"))] if not pool else [
        ("claimed", pods.times.get("seen"))]
    parts, previous = {}, began
    for name, moment in marks:
        if moment is None:
            raise AssertionError(f"the pod watch saw no {name} for {function}")
        parts[name] = round(min(moment, answered) - previous, 4)
        previous = max(previous, min(moment, answered))
    parts["answered"] = round(answered - previous, 4)
    parts["total"] = round(answered - began, 4)
    return parts
