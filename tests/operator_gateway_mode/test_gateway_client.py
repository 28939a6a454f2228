"""The operator's gateway client against the real local gateway (standalone, over a real socket): every failure
is typed by what the caller does about it and names the gateway."""

from __future__ import annotations

import asyncio
import sys

import pytest
import yaml
from gateway_mode_cluster import ECHO_DIR, ECHO_IMAGE
from local_openfaas.gateway import process as gateway_process
from mlfunctions_harness.processes import free_port
from mlfunctions_operator.gateway_client import (
    GatewayClient,
    GatewayRejected,
    GatewayUnauthorized,
    GatewayUnavailable,
)
from mlfunctions_operator.gateway_credentials import FileCredentials, StaticCredentials
from secret_volume import SecretVolume

NAMESPACE = "openfaas-fn"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    base = tmp_path_factory.mktemp("gateway-client")
    programs = base / "programs.yaml"
    programs.write_text(yaml.safe_dump({ECHO_IMAGE: {"python": sys.executable, "argv": [str(ECHO_DIR / "index.py")],
                                                     "cwd": str(ECHO_DIR)}}))
    gw = gateway_process.start(free_port(), base / "gw", programs=[programs], autoscale_interval=0.2,
                               ready_timeout=10.0)
    yield gw
    gw.stop()


def run(gateway_url: str, user: str, password: str, calls):
    return run_with(gateway_url, StaticCredentials(user, password), calls)


def run_with(gateway_url: str, auth, calls):
    async def main():
        client = GatewayClient(gateway_url, auth, timeout=5.0)
        try:
            return await calls(client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def test_deploy_describe_update_delete(gateway):
    deployment = {"service": "client-echo", "image": ECHO_IMAGE, "namespace": NAMESPACE,
                  "envVars": {"A": "1"}, "labels": {"team": "x"}}

    async def calls(client: GatewayClient):
        assert await client.get_function("client-echo", NAMESPACE) is None
        await client.deploy(deployment)
        first = await client.get_function("client-echo", NAMESPACE)
        await client.update({**deployment, "envVars": {"A": "2"}})
        second = await client.get_function("client-echo", NAMESPACE)
        listed = [f["name"] for f in await client.list_functions(NAMESPACE)]
        gone = await client.delete("client-echo", NAMESPACE)
        again = await client.delete("client-echo", NAMESPACE)
        return first, second, listed, gone, again

    first, second, listed, gone, again = run(gateway.url, *gateway.basic_auth, calls)
    assert first["envVars"]["A"] == "1" and first["labels"]["team"] == "x"
    assert second["envVars"]["A"] == "2"
    assert "client-echo" in listed
    assert (gone, again) == (True, False)


def test_a_refused_deployment_says_why(gateway):
    async def calls(client: GatewayClient):
        await client.deploy({"service": "client-bad", "namespace": NAMESPACE})  # no image
    with pytest.raises(GatewayRejected) as raised:
        run(gateway.url, *gateway.basic_auth, calls)
    assert raised.value.status == 400 and gateway.url in str(raised.value) and "image" in str(raised.value)


def test_wrong_credentials_are_unauthorized(gateway):
    async def calls(client: GatewayClient):
        await client.list_functions(NAMESPACE)
    with pytest.raises(GatewayUnauthorized) as raised:
        run(gateway.url, gateway.basic_auth[0], "wrong-password", calls)
    assert raised.value.status == 401 and "unauthorized" in str(raised.value) and gateway.url in str(raised.value)


def test_no_gateway_is_unavailable_naming_it():
    url = f"http://127.0.0.1:{free_port()}"

    async def calls(client: GatewayClient):
        await client.get_function("anything", NAMESPACE)
    with pytest.raises(GatewayUnavailable) as raised:
        run(url, "admin", "x", calls)
    assert raised.value.status is None and url in str(raised.value) and "unreachable" in str(raised.value)


def test_credential_files_are_read_again_when_the_kubelet_swaps_them(gateway, tmp_path):
    """The chart's Secret volume: a wrong password is unauthorized; the same client, after the kubelet's update
    (new directory, ..data swapped), is let in."""
    user, password = gateway.basic_auth
    volume = SecretVolume(tmp_path / "gateway-secret")
    volume.write({"basic-auth-user": user, "basic-auth-password": "wrong-password"})

    async def calls(client: GatewayClient):
        with pytest.raises(GatewayUnauthorized):
            await client.list_functions(NAMESPACE)
        volume.write({"basic-auth-user": user, "basic-auth-password": password})
        return await client.list_functions(NAMESPACE)
    assert isinstance(run_with(gateway.url, FileCredentials(volume.path), calls), list)


def test_missing_credential_files_are_unauthorized_naming_them(gateway, tmp_path):
    async def calls(client: GatewayClient):
        await client.list_functions(NAMESPACE)
    with pytest.raises(GatewayUnauthorized) as raised:
        run_with(gateway.url, FileCredentials(tmp_path / "not-mounted"), calls)
    assert "not-mounted" in str(raised.value) and "basic-auth-password" in str(raised.value)
