"""A node whose harness is killed with SIGKILL leaves pods' shims, mounts, cgroups, rules and its address behind;
the sweep (which every start runs first) removes all of it and nothing of another node.

The second node runs in a network namespace of its own, so that its address, bridge and rules do not meet the
session's node; its processes, mounts and cgroups are this machine's, as a killed run's would be.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from mlfunctions_harness import containerd, node_network, node_sweep, processes
from mlfunctions_harness.node import STATE_ROOT
from mlfunctions_harness.node_sweep import CNI_CACHE, CONTAINER_LOG_LINKS, KEPT

# The first test may start the node on a fresh machine: the node binaries and the images are built then (minutes).
pytestmark = pytest.mark.timeout(1800)

NETWORK_STATE = """
import json
from mlfunctions_harness import node_network
print(json.dumps({"address": node_network.address_present(), "bridge": node_network.bridge_present(),
                  "rules": node_network.own_rules(), "forwarding": node_network.IP_FORWARD.read_text().strip()}))
"""


def _in_netns(netns: str, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", *command], capture_output=True, text=True,
                          check=check, timeout=120)


def _network_state(netns: str) -> dict:
    return json.loads(_in_netns(netns, sys.executable, "-c", NETWORK_STATE).stdout)


def test_sigkilled_node_is_swept_to_nothing_and_the_other_node_is_untouched(node, node_api, tmp_path):
    name = f"mlf-killed-{uuid.uuid4().hex[:6]}"
    workdir = STATE_ROOT / name
    kubectl = [node.control_plane.kubectl, f"--kubeconfig={workdir / 'control-plane' / 'admin.kubeconfig'}"]
    subprocess.run(["ip", "netns", "add", name], check=True)
    harness = None
    try:
        _in_netns(name, "ip", "link", "set", "lo", "up")
        # A new namespace starts with the host's IP forwarding (the session's node may have turned it on).
        forwarding_before = _network_state(name)["forwarding"]
        log = tmp_path / "harness.log"
        harness = processes.spawn(["nsenter", f"--net=/run/netns/{name}", sys.executable, "-m",
                                   "mlfunctions_harness.node", "up", "--name", name], log)
        processes.wait_for(lambda: f"node {name} Ready in" in log.read_text() or harness.poll() is not None,
                           180, f"node {name} to start")
        assert harness.poll() is None, processes.tail(log)
        _in_netns(name, *kubectl, "run", "sleeper", f"--image={node.sandbox_image}", "--image-pull-policy=Never")
        _in_netns(name, *kubectl, "wait", "--for=condition=Ready", "pod/sleeper", "--timeout=90s")

        os.kill(harness.pid, signal.SIGKILL)
        harness.wait()
        ids = containerd.container_ids(containerd.ContainerdPaths(workdir / "containerd"))
        left = {"processes": node_sweep.processes_of(workdir), "mounts": node_sweep.mounts_under(workdir),
                "cgroups": containerd.container_cgroups(ids), "network": _network_state(name)}
        # What the kernel does not clean up by itself, and the sweep must: the pod outlived its harness.
        assert left["processes"] and left["mounts"] and ids and left["cgroups"], left
        assert left["network"]["address"] and left["network"]["bridge"] and left["network"]["rules"], left
        assert left["network"]["forwarding"] == "1", left  # the bridge plugin turns it on

        _in_netns(name, sys.executable, "-m", "mlfunctions_harness.node", "sweep", "--name", name)

        assert node_sweep.processes_of(workdir) == []
        assert node_sweep.mounts_under(workdir) == []  # container root filesystems, shm, netns, volumes
        assert [c for c in left["cgroups"] if c.parent.name == containerd.CRI_NAMESPACE and c.exists()] == []
        assert _network_state(name) == {"address": False, "bridge": False, "rules": [],
                                        "forwarding": forwarding_before}
        assert sorted(p.name for p in workdir.iterdir()) == sorted(KEPT)
        assert [p for p in CNI_CACHE.glob("*") if any(i in p.name for i in ids)] == []
        assert [p for p in CONTAINER_LOG_LINKS.glob("*") if str(workdir) in os.readlink(p)] == []
    finally:
        if harness and harness.poll() is None:
            os.kill(harness.pid, signal.SIGKILL)
            harness.wait()
        _in_netns(name, sys.executable, "-m", "mlfunctions_harness.node", "sweep", "--name", name, check=False)
        subprocess.run(["ip", "netns", "delete", name], check=False)
        if not node_sweep.mounts_under(workdir):  # never delete through a mount a failed sweep left
            shutil.rmtree(workdir, ignore_errors=True)

    # The session's node, in the other namespace, kept its address, its guard and its readiness.
    assert node_network.address_present()
    assert any(node_network.GUARD_CHAIN in r for r in node_network.own_rules())
    ready = {c.type: c.status for c in client.CoreV1Api(node_api).read_node(node.name).status.conditions}
    assert ready["Ready"] == "True"
    assert Path(f"/run/netns/{name}").exists() is False
