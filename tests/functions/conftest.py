"""Fixtures for the ML functions' tests (the harness itself is in function_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from function_harness import PREDICT_DIR, TRAIN_DIR, FunctionProcess, IrisStack, ModelStore
from local_openfaas import funcenv


@pytest.fixture(scope="session")
def function_venvs() -> None:
    """Both functions' venvs, built once (about a minute each the very first time, then cached)."""
    funcenv.function_python(TRAIN_DIR)
    funcenv.function_python(PREDICT_DIR)


@pytest.fixture(scope="module")
def iris(tmp_path_factory, function_venvs):
    """A store with one trained iris model shared by a module's tests that only read (see IrisStack); per
    module, since pytest's wider scopes last the whole session when test folders are not packages."""
    stack = IrisStack(tmp_path_factory)
    yield stack
    stack.close()


@pytest.fixture
def model_store(tmp_path: Path):
    store = ModelStore(tmp_path / "store").start()
    yield store
    store.stop()


@pytest.fixture
def run_function(tmp_path: Path, function_venvs):
    """Start functions; every one is stopped at the end of the test, whatever happens."""
    started: list[FunctionProcess] = []

    def run(function_dir: Path, env: dict[str, str], wait: bool = True) -> FunctionProcess:
        process = FunctionProcess(function_dir, env, tmp_path / f"{function_dir.name}-{len(started)}.log")
        started.append(process)
        return process.start(wait=wait)

    yield run
    for process in started:
        process.stop()
