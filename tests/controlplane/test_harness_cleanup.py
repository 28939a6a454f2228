"""Interrupting or killing whatever started the control plane leaves no etcd, kube-apiserver or controller manager."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mlfunctions_harness.controlplane import binaries_dir

# A process that starts a control plane, prints the components' PIDs and waits to be interrupted.
# SIGINT is restored first: a shell that started us in the background may have ignored it, and a Ctrl-C from a
# terminal is what this emulates.
STARTER = """
import signal, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from mlfunctions_harness.controlplane import LocalControlPlane
with LocalControlPlane() as cp:
    print(" ".join(str(p) for p in cp.processes().values()), flush=True)
    while True:
        time.sleep(1)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: it only waits for its parent to read its status.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


@pytest.mark.integration  # always a local control plane of its own, also with USE_EXISTING_CLUSTER
@pytest.mark.parametrize("interrupt", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_no_component_outlives_its_starter(interrupt):
    binaries_dir()  # build (or find) the binaries first, so the timeout below covers only the start
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in starter.stdout.readline().split()]
        assert len(pids) == 3, "etcd, kube-apiserver and kube-controller-manager should all be running"
        assert all(_alive(p) for p in pids)
        starter.send_signal(interrupt)
        starter.wait(30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p for p in pids if _alive(p)] == []
    finally:
        starter.kill()
        starter.wait()
