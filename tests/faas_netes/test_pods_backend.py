"""The pods backend (local_openfaas/pods) against the real API server, as faas-netes' ServiceAccount under
rbac.yaml: it adopts the Deployment's count, scales it through the scale subresource, routes to a pod as soon as
the pod's own health endpoint answers (before the kubelet's Ready), answers held requests at once when every pod
is stuck, and forgets deleted pods. The test control plane runs no kubelet, so the test writes the pod's status
the way the kubelet would, and the "pod" that answers the probe is an HTTP server on a loopback address."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest
from aiohttp import web
from kubernetes import client
from local_openfaas.faas_netes import identity
from local_openfaas.faas_netes.objects import HTTP_PORT
from local_openfaas.pods.backend import PodBackend
from local_openfaas.pods.pod_state import pod_view
from local_openfaas.runtime.spec import from_custom_object

pytestmark = pytest.mark.integration
NAME = "echo"


def _running_status(ip: str, ready: bool, waiting: str = "") -> dict:
    state = {"waiting": {"reason": waiting, "message": "back-off 10s"}} if waiting else {"running": {}}
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": NAME, "image": "x", "imageID": "", "ready": ready, "restartCount": 0,
                                   "state": state}]}


def test_pod_view_reads_what_the_kubelet_reports():
    pod = {"metadata": {"name": "echo-1", "labels": {"faas_function": NAME}},
           "status": _running_status("10.244.0.7", ready=False)}
    view = pod_view(pod)
    assert (view.function, view.ip, view.ready, view.running, view.deleting, view.stuck) == (
        NAME, "10.244.0.7", False, True, False, "")
    assert view.address == ("10.244.0.7", HTTP_PORT)
    stuck = pod_view({**pod, "status": _running_status("10.244.0.7", False, waiting="CrashLoopBackOff")})
    assert stuck.stuck.startswith("CrashLoopBackOff") and not stuck.running
    assert pod_view({"metadata": {"name": "other", "labels": {}}, "status": {}}) is None
    gone = pod_view({**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2026-12-02T00:00:00Z"}})
    assert gone.deleting


def _free_loopback_address() -> str:
    """A 127.x.y.z on which port 8080 (the pod port the backend probes) is free."""
    for _ in range(50):
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((address, HTTP_PORT))
                return address
            except OSError:
                continue
    raise AssertionError("no loopback address with port 8080 free")


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def _health_server(address: str) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/_/health", _healthy)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, address, HTTP_PORT).start()
    return runner


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)
    return value


def test_routes_scales_and_reports_stuck_pods(control_plane, k8s, function_crd, namespace, tmp_path):
    account = identity.install(k8s, namespace)
    kubeconfig = control_plane.service_account_kubeconfig(namespace, account, tmp_path / "faas-netes.kubeconfig")
    custom, apps, core = client.CustomObjectsApi(k8s), client.AppsV1Api(k8s), client.CoreV1Api(k8s)
    function = custom.create_namespaced_custom_object("openfaas.com", "v1", namespace, "functions", {
        "apiVersion": "openfaas.com/v1", "kind": "Function", "metadata": {"name": NAME},
        "spec": {"name": NAME, "image": "mlfunctions/echo:0.1.0", "labels": {"com.openfaas.scale.min": "2"}}})
    spec = from_custom_object(function)
    address = _free_loopback_address()

    def replicas() -> int | None:
        deployment = apps.read_namespaced_deployment(NAME, namespace)
        return deployment.spec.replicas

    async def scenario() -> None:
        backend = await PodBackend.start(kubeconfig, namespace)
        changes: list[int] = []
        supervisor = backend.supervise(spec, await backend.prepare(spec), 1, lambda s: changes.append(1))
        server = None
        try:
            # The Deployment the reconciler made has min=2: the supervisor adopts that count (scale() came later).
            await _until(lambda: supervisor.desired == 2, 30, "the supervisor to adopt the Deployment's 2")
            assert supervisor.pick() is None

            pod = core.create_namespaced_pod(namespace, {
                "metadata": {"name": f"{NAME}-a", "labels": {"faas_function": NAME}},
                "spec": {"containers": [{"name": NAME, "image": "mlfunctions/echo:0.1.0"}]}})
            core.patch_namespaced_pod_status(pod.metadata.name, namespace,
                                             {"status": _running_status(address, ready=False)})
            # Running, not Ready, nothing answering on its address: not routable.
            assert await supervisor.wait_ready(1.0) is None
            server = await _health_server(address)
            routed = await supervisor.wait_ready(10.0)  # its health endpoint answered: routable before Ready
            assert routed is not None and routed.address == (address, HTTP_PORT) and routed.name == f"{NAME}-a"
            assert supervisor.snapshot().available == 1 and supervisor.starts == 1

            supervisor.scale(0)
            await _until(lambda: replicas() == 0, 30, "the Deployment scaled to 0 through its scale subresource")
            supervisor.scale(3)
            await _until(lambda: replicas() == 3, 30, "the Deployment scaled to 3")

            # Every pod stuck (a crash loop) and nothing serving: a held request is answered at once, with why.
            await server.cleanup()
            server = None
            core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": _running_status(
                address, ready=False, waiting="CrashLoopBackOff")})
            await _until(lambda: supervisor.snapshot().last_error, 30, "the stuck pod to be reported")
            started = time.monotonic()
            assert await supervisor.wait_ready(30.0) is None
            assert time.monotonic() - started < 5.0
            assert "CrashLoopBackOff" in supervisor.snapshot().last_error

            core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
            await _until(lambda: not supervisor.replicas, 30, "the deleted pod to be forgotten")
            assert supervisor.snapshot().available == 0 and changes
        finally:
            if server is not None:
                await server.cleanup()
            await supervisor.close()
            await backend.close()

    asyncio.run(scenario())
