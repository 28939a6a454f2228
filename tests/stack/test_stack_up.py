"""`make up` as a newcomer runs it: `python -m mlfunctions_stack up` brings up its own control plane and
everything else, prints the commands to try (which work), and Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import requests
from mlfunctions_harness.processes import descendants, free_port, pid_alive, wait_for

pytestmark = pytest.mark.server


def test_up_prints_working_commands_and_ctrl_c_stops_everything(tmp_path):
    gateway_port, store_port, console_port = free_port(), free_port(), free_port()
    output = tmp_path / "up.out"
    with open(output, "wb") as sink:
        up = subprocess.Popen([sys.executable, "-m", "mlfunctions_stack", "up", "--gateway-port",
                               str(gateway_port), "--store-port", str(store_port), "--console-port",
                               str(console_port), "--state-dir", str(tmp_path / "state")],
                              stdout=sink, stderr=subprocess.STDOUT)
    children: list[int] = []
    try:
        wait_for(lambda: "Ctrl-C stops everything" in output.read_text() or up.poll() is not None, timeout=600,
                 interval=0.5, what="`up` to finish starting")
        text = output.read_text()
        assert up.poll() is None, text
        children = descendants(up.pid)

        kubeconfig = re.search(r"export KUBECONFIG=(\S+)", text).group(1)
        assert os.path.exists(kubeconfig)
        kubectl_dir = re.search(r"export PATH=(\S+):\$PATH", text).group(1)
        # What a user reads with the printed exports: the MLFunctions, their URLs and their Functions' names.
        listed_mlfunctions = subprocess.run(
            [os.path.join(kubectl_dir, "kubectl"), "get", "mlfunctions", "-n", "data-science", "-o", "json"],
            env={**os.environ, "KUBECONFIG": kubeconfig}, capture_output=True, text=True, check=True)
        mlfunctions = {m["metadata"]["name"]: m["status"] for m in json.loads(listed_mlfunctions.stdout)["items"]}
        predict_url = mlfunctions["iris-predict"]["url"]
        assert predict_url.startswith(f"http://127.0.0.1:{gateway_port}/function/"), predict_url
        # The printed prediction command for iris-predict works, and its answer is the one printed.
        printed = re.search(r"curl -s " + re.escape(predict_url) + r" -H 'Content-Type: application/json' -d '([^']+)'",
                            text)
        assert printed, f"no curl to {predict_url} in:\n{text}"
        body, shown = printed.group(1), re.search(r"^\s+-> (.+)$", text, re.MULTILINE).group(1)
        answer = requests.post(predict_url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["predictions"] == ["setosa", "virginica"]
        assert json.loads(shown)["predictions"] == answer.json()["predictions"]
        user, password = re.search(r"curl -s -u (\S+):(\S+) ", text).groups()
        listed = requests.get(f"http://127.0.0.1:{gateway_port}/system/functions", auth=(user, password), timeout=10)
        assert {f["name"] for f in listed.json()} >= {
            mlfunctions[name]["function"]["name"] for name in ("iris-train", "iris-predict")}
        # The console it prints answers on the port asked for.
        console_url = re.search(r"console\s+(http://\S+)", text).group(1)
        assert console_url == f"http://127.0.0.1:{console_port}"
        assert requests.get(f"{console_url}/healthz", timeout=10).status_code == 200
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert code == 0, output.read_text()[-3000:]
    assert "stopped" in output.read_text().splitlines()[-1]
    wait_for(lambda: not [pid for pid in children if pid_alive(pid)], timeout=10,
             what="every process `up` started to be gone after Ctrl-C")
