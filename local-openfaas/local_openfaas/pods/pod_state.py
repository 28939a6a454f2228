"""What the pods backend needs to know of one pod, read from the pod object (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from local_openfaas.faas_netes.objects import FUNCTION_LABEL, HTTP_PORT

# Waiting reasons that mean the pod will not serve without a change (to the image, the spec, the Secret): a request
# held for it is answered now, with the reason, instead of at the ready timeout.
STUCK_REASONS = frozenset({"CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
                           "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
                           "RunContainerError"})


@dataclass(frozen=True)
class PodView:
    name: str
    function: str          # the key it is filed under: its function, or "pool/<key>" for an unclaimed pool pod
    ip: str
    ready: bool            # the kubelet's Ready condition
    running: bool          # every container running (the watchdog may already answer, before the first probe)
    deleting: bool
    stuck: str = ""        # why it cannot start ("CrashLoopBackOff: back-off 10s restarting ..."), or ""

    @property
    def address(self) -> tuple[str, int]:
        return (self.ip, HTTP_PORT)

    @property
    def where(self) -> str:
        return f"pod {self.name} ({self.ip})"


def function_key(labels: Mapping[str, str]) -> str | None:
    return labels.get(FUNCTION_LABEL)


def pod_view(pod: dict, key: Callable[[Mapping[str, str]], str | None] = function_key) -> PodView | None:
    """The view of a function's pod, filed under `key(labels)` (its function's name); None for another pod."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    function = key(meta.get("labels") or {})
    if not function:
        return None
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
    containers = status.get("containerStatuses") or ()
    stuck = ""
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            stuck = f"{waiting['reason']}: {waiting.get('message') or 'the container cannot start'}"
    return PodView(
        name=meta.get("name", ""), function=function, ip=status.get("podIP") or "",
        ready=conditions.get("Ready") == "True",
        running=bool(containers) and all("running" in (c.get("state") or {}) for c in containers),
        deleting=bool(meta.get("deletionTimestamp")) or status.get("phase") in ("Succeeded", "Failed"),
        stuck=stuck)
