"""The runtime when the API server goes away and comes back: functions keep answering, the /system API says
503 clearly, and once the API server is back the runtime catches up (Functions created meanwhile run, their
status is written) without a restart. The outage is a real one: the runtime reaches the API server through a
TCP relay that the test takes down (open connections cut, new ones refused) and brings back."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
import yaml
from kubernetes import client
from local_support import ECHO_IMAGE
from mlfunctions_harness.processes import descendants, free_port, pid_alive, wait_for
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime import rbac
from mlfunctions_harness.tcp_pump import pump

pytestmark = pytest.mark.server
GROUP, VERSION, PLURAL = "openfaas.com", "v1", "functions"


class Relay:
    """A TCP relay 127.0.0.1:port -> target that can be taken down and brought back on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, free_port()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:
                return  # taken down
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._connections += [downstream, upstream]
            for a, b in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()


def _function(name: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Function", "metadata": {"name": name},
            "spec": {"name": name, "image": ECHO_IMAGE}}


def test_api_server_outage_and_recovery(control_plane, k8s, install_crds, namespace, tmp_path, echo_programs):
    install_crds("hack/crds/openfaas.com_functions.yaml")
    rbac.ensure_identity(k8s, namespace, "runtime")
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "runtime", tmp_path / "direct.kubeconfig")
    config = yaml.safe_load(kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]  # https://127.0.0.1:<port>
    relay = Relay(("127.0.0.1", int(server.rsplit(":", 1)[1])))
    relay.up()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    relayed = tmp_path / "relayed.kubeconfig"
    relayed.write_text(yaml.safe_dump(config))
    objects = client.CustomObjectsApi(k8s)

    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[echo_programs], kubeconfig=relayed,
                               extra_args=["--watch-namespace", namespace, "--namespace", namespace])
    children: list[int] = []
    try:
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _function("before"))
        wait_for(lambda: requests.get(f"{gw.url}/function/before", timeout=30).status_code == 200,
                 what="the Function to run")

        relay.down()
        # The data plane does not need the control plane.
        assert requests.get(f"{gw.url}/function/before", timeout=30).status_code == 200
        refused = requests.post(f"{gw.url}/system/functions", json={"service": "viaapi", "image": ECHO_IMAGE},
                                auth=gw.basic_auth, timeout=60)
        assert refused.status_code == 503
        assert "control plane cannot be reached" in refused.json()["message"]
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _function("during"))

        relay.up()
        answered = wait_for(lambda: requests.get(f"{gw.url}/function/during", timeout=30).status_code == 200,
                            timeout=60, what="the Function created during the outage to run")
        assert answered
        wait_for(lambda: (objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "during")
                          .get("status") or {}).get("availableReplicas") == 1, timeout=30,
                 what="its status to be written")
        accepted = requests.post(f"{gw.url}/system/functions", json={"service": "viaapi", "image": ECHO_IMAGE},
                                 auth=gw.basic_auth, timeout=60)
        assert accepted.status_code == 202
    finally:
        children = descendants(gw.process.pid)
        gw.stop()
        relay.down()
    wait_for(lambda: not [pid for pid in children if pid_alive(pid)], timeout=10, what="function processes to exit")
