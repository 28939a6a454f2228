"""The console in gatewayAPI mode (OpenFaaS CE: no Function resources): function state read from the real local
gateway's API (GET /system/functions?namespace=, /system/function/<name>) with its basic auth from files, as the
chart mounts the Secret. The console runs as a ServiceAccount under the chart's console RBAC rendered for that
mode (no access to Functions at all), and its metrics URL is a closed port, so what the functions page says about
replicas and invocations can only have come from the gateway's reports."""

from __future__ import annotations

import html
import re
import subprocess

import pytest
import requests
import yaml
from .console_support import sign_in
from mlfunctions_harness.operator_process import CHART, helm
from mlfunctions_harness.processes import free_port, wait_for

pytestmark = pytest.mark.server
_ROW = re.compile(r'<tr data-function="(?P<key>[^"]+)">(?P<row>.*?)</tr>', re.DOTALL)
_REPLICAS = re.compile(r'<td class="replicas">\s*(?P<ready>\d+) ready of (?P<desired>\d+)\s*</td>')
_TOTAL = re.compile(r'<span class="muted">(?P<total>\d+) in all</span>')


def _gateway_mode_account(console_stack, control_plane, tmp_path) -> str:
    """The chart's console ServiceAccount and RBAC rendered for openfaas.deploy=gatewayAPI; its kubeconfig."""
    release = f"gw{free_port()}"
    rendered = subprocess.run(
        [helm(), "template", release, str(CHART), "--namespace", console_stack.operator_namespace, "--kube-version", control_plane.version,
         "--set", "console.enabled=true", "--set", "openfaas.deploy=gatewayAPI",
         "--set", "openfaas.gatewaySecret=openfaas-gateway",
         "--set", f"functionNamespace={console_stack.function_namespace}",
         "--show-only", "templates/console-serviceaccount.yaml", "--show-only", "templates/console-rbac.yaml"],
        check=True, capture_output=True, text=True).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    assert not [rule for d in documents for rule in d.get("rules") or [] if "openfaas.com" in rule["apiGroups"]]
    console_stack.stack.kubectl("apply", "-f", "-", stdin=rendered)
    account = next(d["metadata"]["name"] for d in documents if d["kind"] == "ServiceAccount")
    return str(control_plane.service_account_kubeconfig(console_stack.operator_namespace, account,
                                                        tmp_path / "gateway-mode.kubeconfig"))


def _shown(url: str, session: requests.Session) -> tuple[dict[str, tuple[int, int, int | None]], str]:
    """The functions page: {namespace/name: (ready, desired, invocations in all)} and its text."""
    page = session.get(f"{url}/", timeout=30)
    assert page.status_code == 200 and "Traceback" not in page.text
    shown = {}
    for row in _ROW.finditer(page.text):
        replicas, total = _REPLICAS.search(row["row"]), _TOTAL.search(row["row"])
        if replicas:
            shown[row["key"]] = (int(replicas["ready"]), int(replicas["desired"]),
                                 int(total["total"]) if total else None)
    return shown, html.unescape(page.text)


def test_functions_page_shows_the_gateways_replicas_and_invocations(console_stack, control_plane,
                                                                    other_console, tmp_path):
    gateway = console_stack.stack.gateway_process
    credentials = tmp_path / "gateway-credentials"
    credentials.mkdir()
    (credentials / "basic-auth-user").write_text(gateway.basic_auth[0])
    (credentials / "basic-auth-password").write_text(gateway.basic_auth[1] + "\n")  # as a Secret's file may end
    url = other_console(
        CONSOLE_KUBECONFIG=_gateway_mode_account(console_stack, control_plane, tmp_path),
        CONSOLE_OPENFAAS_DEPLOY="gatewayAPI",
        CONSOLE_GATEWAY_CREDENTIALS_DIR=str(credentials),
        CONSOLE_GATEWAY_METRICS_URL=f"http://127.0.0.1:{free_port()}/metrics",  # nothing listens there
    )
    session = sign_in(url, console_stack.user, console_stack.password)

    def reported() -> dict[str, tuple[int, int, int]]:
        """What the gateway reports now, keyed as the page shows its MLFunctions."""
        answer = requests.get(f"{gateway.url}/system/functions", auth=gateway.basic_auth, timeout=10,
                              params={"namespace": console_stack.function_namespace})
        answer.raise_for_status()
        by_function = {f["name"]: (f["availableReplicas"], f["replicas"], f["invocationCount"])
                       for f in answer.json()}
        return {f"{console_stack.namespace}/{name}": by_function[m["status"]["function"]["name"]]
                for name, m in console_stack.mlfunctions.items()}

    # Page and gateway read a moment apart (a function scaled to zero may move in between): until they agree.
    def agree():
        shown, text = _shown(url, session)
        expected = reported()
        return (shown, text, expected) if {k: shown.get(k) for k in expected} == expected else None

    _, text, expected = wait_for(agree, timeout=30, interval=0.5,
                                     what="the functions page to show what the gateway reports")
    assert "The gateway's metrics cannot be read" in text  # so none of it came from the metrics
    assert "The gateway's functions cannot be read" not in text
    assert "may not read" not in text  # nothing asked of Kubernetes that its RBAC lacks
    # The trainings of the stack were calls through the gateway, which counted them.
    assert any(total >= 1 for _, _, total in expected.values())

    # Credentials the gateway refuses: said on the page, read again at once once corrected (no restart).
    (credentials / "basic-auth-password").write_text("not-the-password")
    text = _shown(url, session)[1]
    assert "The gateway's functions cannot be read" in text and "refused the console's credentials" in text
    (credentials / "basic-auth-password").write_text(gateway.basic_auth[1])
    assert "The gateway's functions cannot be read" not in _shown(url, session)[1]
