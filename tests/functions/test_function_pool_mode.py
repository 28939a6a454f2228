"""A function image started in pool mode (function_pool.py), as a real process: it waits with its libraries
imported and no function's variables or secrets, becomes exactly one function when the pool's token asks, and
refuses every other way in."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from function_harness import IRIS_SAMPLES, PREDICT_DIR, FunctionProcess
from mlfunctions_harness.processes import wait_healthy

pytestmark = pytest.mark.server
POOL_TOKEN = "pool-token-for-this-test"


@pytest.fixture
def pool_replica(tmp_path: Path, iris):
    token_file = tmp_path / "pool-token"
    token_file.write_text(POOL_TOKEN + "\n")
    replica = FunctionProcess(PREDICT_DIR, {"MLFUNCTIONS_POOL_TOKEN_FILE": str(token_file)}, tmp_path / "pool.log")
    replica.start(wait=False)
    wait_healthy(f"{replica.url}/_/pool/health", replica.process, "pool replica", replica.log_path, 60)
    yield replica
    replica.stop()


def specialize(replica: FunctionProcess, body, token: str = POOL_TOKEN) -> requests.Response:
    return requests.post(f"{replica.url}/_/specialize", json=body, timeout=60,
                         headers={"Authorization": f"Bearer {token}"} if token else {})


def assignment(iris) -> dict:
    return {"env": {"MODEL_NAME": "iris", "MODEL_STORE_URL": iris.store.url},
            "secrets": {"model-store-token": base64.b64encode(iris.reader.token.encode()).decode()}}


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_waits_with_the_handler_imported_and_nothing_of_a_function(pool_replica, iris):
    assert requests.get(f"{pool_replica.url}/_/health", timeout=10).status_code == 503
    assert requests.post(f"{pool_replica.url}/", json={"instances": IRIS_SAMPLES["setosa"]},
                         timeout=10).status_code == 503
    variables = environ(pool_replica.process.pid)
    assert "MODEL_NAME" not in variables and "MODEL_STORE_TOKEN" not in variables
    assert iris.reader.token not in Path(f"/proc/{pool_replica.process.pid}/environ").read_text(errors="replace")


def test_specialization_needs_the_pool_token(pool_replica, iris):
    assert specialize(pool_replica, assignment(iris), token="").status_code == 401
    assert specialize(pool_replica, assignment(iris), token="guessed").status_code == 401
    assert requests.get(f"{pool_replica.url}/_/pool/health", timeout=10).status_code == 200  # still waiting


@pytest.mark.parametrize("body, says", [
    ({"env": ["MODEL_NAME"]}, '"env" must map'),
    ({"env": {"MODEL_NAME": 3}}, '"env" must map'),
    ({"secrets": {"../escape": "eA=="}}, "invalid secret file name"),
    ({"secrets": {"token": "not base64!"}}, "is not base64"),
])
def test_a_malformed_assignment_is_a_400_and_leaves_it_waiting(pool_replica, body, says):
    answer = specialize(pool_replica, body)
    assert answer.status_code == 400 and says in answer.json()["message"]
    assert requests.get(f"{pool_replica.url}/_/pool/health", timeout=10).status_code == 200


def test_becomes_one_function_once_and_never_another(pool_replica, iris, tmp_path):
    answer = specialize(pool_replica, assignment(iris))
    assert answer.status_code == 200, answer.text
    assert answer.json()["specialized"] is True
    served = requests.post(f"{pool_replica.url}/", json={"instances": IRIS_SAMPLES["virginica"]}, timeout=30)
    assert served.status_code == 200, served.text
    assert served.json() == {"predictions": ["virginica"] * 3, "model": {"name": "iris", "version": 1}}
    assert requests.get(f"{pool_replica.url}/_/health", timeout=10).status_code == 200
    # The pool's health endpoint is the function's now (no longer "waiting"), and a second assignment fails.
    other = {"env": {"MODEL_NAME": "someone-elses", "MODEL_STORE_URL": iris.store.url}}
    again = specialize(pool_replica, other)
    assert again.status_code == 409, again.text
    assert requests.post(f"{pool_replica.url}/", json={"instances": IRIS_SAMPLES["setosa"]},
                         timeout=30).json()["model"]["name"] == "iris"


def test_a_function_that_cannot_start_spends_the_replica(pool_replica, iris):
    answer = specialize(pool_replica, {"env": {"MODEL_STORE_URL": iris.store.url}})  # no MODEL_NAME
    assert answer.status_code == 422 and "MODEL_NAME" in answer.json()["message"]
    assert specialize(pool_replica, assignment(iris)).status_code == 409
    assert requests.get(f"{pool_replica.url}/_/pool/health", timeout=10).status_code == 503
