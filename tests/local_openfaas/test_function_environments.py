"""What each function's environment (its image's Python packages) holds: the predict function has no
scikit-learn.

The venvs are built by local_openfaas.funcenv from exactly the requirements the images install (template +
function + iris-client), and the functions run from them in every other test."""

from __future__ import annotations

import json
import subprocess

import pytest

from local_openfaas import funcenv
from local_support import PREDICT_DIR, TRAIN_DIR

LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-') for d in m.distributions()})))"
)
# Anything that could unpickle a scikit-learn model, or is only there because scikit-learn is.
TRAINING_ONLY = {"scikit-learn", "sklearn", "skl2onnx", "scipy", "joblib", "threadpoolctl", "skops"}


def _distributions(function_dir) -> set[str]:
    python = funcenv.function_python(function_dir)
    env = funcenv.function_environment(function_dir, port=0)
    result = subprocess.run(
        [str(python), "-c", LIST_DISTRIBUTIONS], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def test_predict_environment_has_no_scikit_learn(function_venvs):
    installed = _distributions(PREDICT_DIR)
    assert {"onnxruntime", "numpy", "iris-client", "uvicorn"} <= installed  # it is the real one
    assert installed & TRAINING_ONLY == set()
    python = funcenv.function_python(PREDICT_DIR)
    result = subprocess.run(
        [str(python), "-c", "import sklearn"],
        env=funcenv.function_environment(PREDICT_DIR, 0),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "No module named 'sklearn'" in result.stderr


def test_train_environment_has_the_training_stack(function_venvs):
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "iris-client", "starlette"} <= _distributions(
        TRAIN_DIR
    )


def test_function_environment_is_hermetic(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/with/sklearn")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    env = funcenv.function_environment(PREDICT_DIR, 8123, {"MODEL_NAME": "iris"})
    assert "PYTHONPATH" not in env and "HTTP_PROXY" not in env
    assert env["PORT"] == "8123" and env["FUNCTION_DIR"] == str(PREDICT_DIR) and env["MODEL_NAME"] == "iris"
    assert env["MODEL_REFRESH_SECONDS"] == "30"  # from stack.yml, as the image's deployment would set it


def test_venv_is_keyed_by_its_inputs():
    assert funcenv.venv_dir(PREDICT_DIR) != funcenv.venv_dir(TRAIN_DIR)
    assert funcenv.venv_dir(PREDICT_DIR) == funcenv.venv_dir(str(PREDICT_DIR) + "/")


def test_unknown_function_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LookupError, match="is not the handler of any function"):
        funcenv.function_spec(tmp_path)
