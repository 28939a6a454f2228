"""Harness for the ML functions' tests: a real iris-server, and the functions as real processes in their own
venvs.

Importing it also makes the functions' modules importable (for unit tests of their pure parts): the two
function folders and the template folder go on sys.path. Their module names are distinct, except `handler`,
which tests never import."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests
from iris_client import IssuedToken, ModelStoreClient
from mlfunctions_harness.model_store import start_iris_server, stop_iris_server
from mlfunctions_harness.processes import free_port, wait_for, wait_healthy

from local_openfaas import funcenv

TRAIN_DIR = funcenv.FUNCTIONS_DIR / "train"
PREDICT_DIR = funcenv.FUNCTIONS_DIR / "predict"
TEMPLATE_DIR = funcenv.FUNCTIONS_DIR / "template" / "mlfunctions-python3"
ADMIN_TOKEN = "functions-test-admin-token"
START_TIMEOUT_SECONDS = 60.0
SWAP_TIMEOUT_SECONDS = 20.0  # a predict function sees a new version within this

for folder in (TRAIN_DIR, PREDICT_DIR, TEMPLATE_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# Three samples of each iris species from the dataset itself: any decent model names them right.
IRIS_SAMPLES = {
    "setosa": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [5.0, 3.6, 1.4, 0.2]],
    "versicolor": [[7.0, 3.2, 4.7, 1.4], [6.4, 3.2, 4.5, 1.5], [5.7, 2.8, 4.5, 1.3]],
    "virginica": [[6.3, 3.3, 6.0, 2.5], [7.1, 3.0, 5.9, 2.1], [7.7, 3.8, 6.7, 2.2]],
}


@dataclass
class ModelStore:
    """A real iris-server that tests can stop and start again on the same port with the same data."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    url: str = ""
    process: subprocess.Popen | None = None

    def start(self) -> ModelStore:
        self.url, self.process = start_iris_server(self.data_dir, ADMIN_TOKEN, port=self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_iris_server(self.process)
            self.process = None

    def admin(self) -> ModelStoreClient:
        return ModelStoreClient(self.url or f"http://127.0.0.1:{self.port}", ADMIN_TOKEN)

    def token(self, models: list[str], rights: list[str]) -> IssuedToken:
        with self.admin() as admin:
            return admin.create_token(models=models, rights=rights, description="tests/functions")

    def metric(self, name: str) -> float:
        """An unlabelled counter from the store's /metrics, e.g. iris_not_modified_total."""
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        assert found, f"{name} is not in the store's metrics"
        return float(found.group(1))


@dataclass
class FunctionProcess:
    """One function running as its image would run it: its own venv, a clean environment, 127.0.0.1:$PORT."""

    function_dir: Path
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> FunctionProcess:
        env = funcenv.function_environment(self.function_dir, self.port, self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                funcenv.function_command(self.function_dir), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            name = self.function_dir.name
            wait_healthy(f"{self.url}/_/health", self.process, name, self.log_path, START_TIMEOUT_SECONDS)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def log_count(self, text: str) -> int:
        """How many lines of the whole log contain `text`: events the function reports, counted."""
        return sum(text in line for line in self.log_path.read_text(errors="replace").splitlines())


def function_env(store: ModelStore, token: str, model: str = "iris", **extra: str) -> dict[str, str]:
    return {"MODEL_NAME": model, "MODEL_STORE_URL": store.url, "MODEL_STORE_TOKEN": token, **extra}


def train_model(function: FunctionProcess, **body) -> dict:
    """POST one training request; it must succeed."""
    response = requests.post(f"{function.url}/", json=body or None, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def predict_rows(function: FunctionProcess, rows, path: str = "/", **params) -> requests.Response:
    return requests.post(f"{function.url}{path}", json={"instances": rows}, params=params, timeout=30)


def served_version(function: FunctionProcess) -> int:
    response = predict_rows(function, IRIS_SAMPLES["setosa"][:1])
    assert response.status_code == 200, response.text
    return response.json()["model"]["version"]


def wait_for_version(function: FunctionProcess, version: int) -> None:
    wait_for(
        lambda: served_version(function) == version,
        SWAP_TIMEOUT_SECONDS,
        f"{function.function_dir.name} on port {function.port} to serve version {version}",
        interval=0.1,
    )


class IrisStack:
    """One store with one trained iris model, a writer and a reader token, the train function that trained it
    and a predict function serving it: shared by the tests that only read (they may start more functions,
    stopped with the stack)."""

    def __init__(self, tmp_path_factory):
        self.dir = tmp_path_factory.mktemp("iris-stack")
        self.store = ModelStore(self.dir / "store").start()
        self.writer = self.store.token(["iris"], ["read", "write"])
        self.reader = self.store.token(["iris"], ["read"])
        self.functions: list[FunctionProcess] = []
        self.train = self.run(TRAIN_DIR, function_env(self.store, self.writer.token))
        self.trained = train_model(self.train)
        self.predict = self.run(
            PREDICT_DIR,
            function_env(self.store, self.reader.token, MAX_BATCH_ROWS="50", MAX_REQUEST_BYTES="100000"),
        )

    def run(self, function_dir, env, wait: bool = True) -> FunctionProcess:
        function = FunctionProcess(
            function_dir, env, self.dir / f"{function_dir.name}-{len(self.functions)}.log"
        )
        self.functions.append(function)
        return function.start(wait=wait)

    def close(self) -> None:
        for function in self.functions:
            function.stop()
        self.store.stop()
