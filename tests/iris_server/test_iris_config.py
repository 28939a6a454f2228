"""Start-up configuration of the real server process: admin token sources and refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from iris_client import Unauthorized

pytestmark = pytest.mark.server


def _run_without_serving(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    return subprocess.run(
        [sys.executable, "-m", "iris_server"],
        env={**base, "IRIS_DATA_DIR": str(tmp_path / "store"), "IRIS_PORT": "0", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_an_admin_token(tmp_path):
    result = _run_without_serving({}, tmp_path)
    assert result.returncode == 2
    assert "IRIS_ADMIN_TOKEN" in result.stderr


def test_refuses_a_short_admin_token(tmp_path):
    result = _run_without_serving({"IRIS_ADMIN_TOKEN": "short"}, tmp_path)
    assert result.returncode == 2 and "at least 16" in result.stderr


def test_refuses_an_unreadable_token_file(tmp_path):
    result = _run_without_serving({"IRIS_ADMIN_TOKEN_FILE": str(tmp_path / "missing")}, tmp_path)
    assert result.returncode == 2 and "IRIS_ADMIN_TOKEN_FILE" in result.stderr


def test_admin_token_file_wins_over_the_environment(iris_factory, tmp_path):
    secret_file = tmp_path / "model-store-admin-token"
    secret_file.write_text("token-from-a-mounted-secret\n")  # Secrets often end with a newline
    server = iris_factory(extra_env={"IRIS_ADMIN_TOKEN_FILE": str(secret_file)}).start()
    assert server.client("token-from-a-mounted-secret").list_models() == []
    with pytest.raises(Unauthorized):
        server.client(retries=0).list_models()  # the IRIS_ADMIN_TOKEN the fixture also set
