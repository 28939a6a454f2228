"""A predict function's in-cluster cold start: its Deployment scaled 0 -> 1 until the first correct answer, split
into the parts a user waits through.

Clocks: everything is wall-clock time of this machine (the node is this machine), so the pod watch, the
container's process start (/proc), the container's log lines (containerd stamps each with nanoseconds) and the
requests sent from here share one clock. Pod conditions and containerStatuses carry only whole seconds, so they
are not used for the split; the watch sees each change as the kubelet reports it.

    scheduled      scale call -> the pod is bound to the node (scheduler)
    container      -> the function's process exists (sandbox, network, container created and started: kubelet,
                      containerd, runc)
    imports        -> the app is built and uvicorn starts (interpreter, imports, handler set-up); log line
    model          -> the model is loaded from the store (download through the Service, onnxruntime session)
    serving        -> the first correct answer sent straight to the pod's IP (polled from the process start)
    readiness      -> the kubelet reports the pod Ready (its readiness probe: faas-netes's timings)
    service        -> the first correct answer through the Service's ClusterIP (kube-proxy's rules for the pod)
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

LOG_LINE = re.compile(r"^(\S+) (.*)$")
ANSWER_POLL_SECONDS = 0.005


def _log_times(core: client.CoreV1Api, namespace: str, pod: str) -> dict[str, float]:
    """Wall-clock times of the container's first log lines of interest (containerd's timestamps)."""
    marks = {"imports": "Started server process", "model": '"model loaded"', "listening": "Uvicorn running on"}
    found: dict[str, float] = {}
    for line in core.read_namespaced_pod_log(pod, namespace, timestamps=True).splitlines():
        matched = LOG_LINE.match(line)
        if not matched:
            continue
        stamp, text = matched.groups()
        for name, needle in marks.items():
            if name not in found and needle in text:
                found[name] = _parse_rfc3339(stamp)
    return found


def _parse_rfc3339(stamp: str) -> float:
    # containerd writes nanoseconds; Python's parser takes microseconds.
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00").timestamp()


def process_start_time(pid: int) -> float:
    """Wall-clock start of a process, from /proc (clock ticks since boot; 10 ms resolution)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime + ticks / 100.0


class PodEvents(threading.Thread):
    """Records when the new pod is first seen bound, running and Ready (wall-clock), from a watch."""

    def __init__(self, core: client.CoreV1Api, namespace: str, selector: str, resource_version: str):
        super().__init__(daemon=True)
        self.core, self.namespace, self.selector, self.resource_version = core, namespace, selector, resource_version
        self.times: dict[str, float] = {}
        self.pod: client.V1Pod | None = None
        self.ready = threading.Event()
        self._watch = watch.Watch()
        self.skip: set[str] = set()  # pods that were there before the start (a replaced pod)

    def run(self) -> None:
        """Watch until Ready; a watch the server (or the connection) ends is resumed from the last version seen,
        and from a fresh listing when that version is too old (410)."""
        while not self.ready.is_set():
            try:
                for event in self._watch.stream(self.core.list_namespaced_pod, self.namespace,
                                                label_selector=self.selector, resource_version=self.resource_version,
                                                timeout_seconds=60):
                    self.resource_version = event["object"].metadata.resource_version
                    self._seen(event["type"], event["object"], time.time())
            except (ProtocolError, ApiException) as error:
                if isinstance(error, ApiException) and error.status != 410:
                    raise
                if isinstance(error, ApiException):  # too old: list again, and look at what the listing shows
                    listing = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
                    self.resource_version = listing.metadata.resource_version
                    for pod in listing.items:
                        self._seen("ADDED", pod, time.time())
                self._watch = watch.Watch()

    def _seen(self, kind: str, pod: client.V1Pod, seen: float) -> None:
        if kind == "DELETED" or pod.metadata.deletion_timestamp or pod.metadata.name in self.skip:
            return
        self.pod = pod
        self.times.setdefault("seen", seen)
        if pod.spec.node_name:
            self.times.setdefault("scheduled", seen)
        if pod.status.pod_ip:
            self.times.setdefault("pod_ip", seen)
        if any(s.state.running for s in pod.status.container_statuses or []):
            self.times.setdefault("running_reported", seen)
        if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
            self.times.setdefault("readiness", seen)
            self.ready.set()
            self._watch.stop()


def _first_correct(send: Callable[[], requests.Response], correct: Callable[[dict], bool],
                   deadline: float) -> float:
    while time.monotonic() < deadline:
        try:
            answer = send()
            if answer.status_code == 200 and correct(answer.json()):
                return time.time()
        except requests.RequestException:
            pass
        time.sleep(ANSWER_POLL_SECONDS)
    raise TimeoutError("no correct answer before the deadline")


def measure(core: client.CoreV1Api, namespace: str, function: str, scale: Callable[[int], None],
            container_pid: Callable[[str], int], service_ready: Callable[[str], str], body: dict,
            correct: Callable[[dict], bool], timeout: float = 120.0) -> dict[str, float]:
    """One cold start, in seconds from the scale call: {part: seconds, ..., "total": ...}.

    `scale(n)` sets the Deployment's replicas (faas-netes's scale call); `service_ready(pod_ip)` waits until the
    Service routes to the pod and returns its base URL; `container_pid(container_id)` is the node's."""
    selector = f"faas_function={function}"
    old = [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items]
    scale(0)
    try:
        _wait_gone(core, namespace, selector, 20.0)
        scaled = True
    except TimeoutError:  # the 0 did not hold (see the JSON's "trigger"): replace the pod instead
        scaled = False
    resource_version = core.list_namespaced_pod(namespace, label_selector=selector).metadata.resource_version
    pods = PodEvents(core, namespace, selector, resource_version)
    pods.skip = set(old)
    pods.start()
    deadline = time.monotonic() + timeout
    began = time.time()
    if scaled:
        scale(1)
    else:
        for name in old:
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    while "pod_ip" not in pods.times:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pod of {function} got no IP")
        time.sleep(ANSWER_POLL_SECONDS)
    pod_url = f"http://{pods.pod.status.pod_ip}:8080/"
    served = _first_correct(lambda: requests.post(pod_url, json=body, timeout=5), correct, deadline)
    if not pods.ready.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"the pod of {function} did not turn Ready")
    service_url = service_ready(pods.pod.status.pod_ip)
    through_service = _first_correct(lambda: requests.post(service_url, json=body, timeout=5), correct, deadline)

    pod = core.read_namespaced_pod(pods.pod.metadata.name, namespace)
    started = process_start_time(container_pid(pod.status.container_statuses[0].container_id))
    logs = _log_times(core, namespace, pod.metadata.name)
    marks = [("scheduled", pods.times["scheduled"]), ("container", started), ("imports", logs["imports"]),
             ("model", logs["model"]), ("serving", served), ("readiness", pods.times["readiness"]),
             ("service", through_service)]
    parts, previous = {}, began
    for name, moment in marks:
        parts[name] = round(moment - previous, 4)
        previous = max(previous, moment)
    parts["total"] = round(through_service - began, 4)
    parts["first_answer_from_pod"] = round(served - began, 4)
    parts["trigger"] = "scale 0 -> 1" if scaled else "pod deleted, replica recreated"
    return parts


def _wait_gone(core: client.CoreV1Api, namespace: str, selector: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while core.list_namespaced_pod(namespace, label_selector=selector).items:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pods {selector} still there after {timeout:g}s")
        time.sleep(0.1)
