"""Harness for the ML functions' tests: a real iris-server, and the functions as real processes in their own
venvs.

Importing it also makes the functions' modules importable (for unit tests of their pure parts): the two
function folders and the template folder go on sys.path. Their module names are distinct, except `handler`,
which tests never import."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from iris_client import IssuedToken, ModelStoreClient
from mlfunctions_harness.model_store import free_port, start_iris_server, stop_iris_server

from local_openfaas import funcenv

TRAIN_DIR = funcenv.FUNCTIONS_DIR / "train"
PREDICT_DIR = funcenv.FUNCTIONS_DIR / "predict"
TEMPLATE_DIR = funcenv.FUNCTIONS_DIR / "template" / "mlfunctions-python3"
ADMIN_TOKEN = "functions-test-admin-token"
START_TIMEOUT_SECONDS = 60.0

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


@dataclass
class FunctionProcess:
    """One function running as its image would run it: its own venv, a clean environment, 127.0.0.1:$PORT."""

    function_dir: Path
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    started_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> FunctionProcess:
        env = funcenv.function_environment(self.function_dir, self.port, self.env)
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                funcenv.function_command(self.function_dir), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        if wait:
            self.wait_healthy()
        self.started_seconds = time.perf_counter() - started
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.function_dir.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if requests.get(f"{self.url}/_/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        raise RuntimeError(
            f"{self.function_dir.name} not healthy after {START_TIMEOUT_SECONDS}s:\n{self.log()}"
        )

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


def function_env(store: ModelStore, token: str, model: str = "iris", **extra: str) -> dict[str, str]:
    return {"MODEL_NAME": model, "MODEL_STORE_URL": store.url, "MODEL_STORE_TOKEN": token, **extra}
