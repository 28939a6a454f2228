"""Per-function virtualenvs: the stand-in for a function's image on a machine without a container engine.

A function folder (functions/predict, ...) is built into a virtualenv holding exactly what its image
holds: its template's requirements, its own requirements and the iris-client package. Nothing from the
development environment leaks in (no PYTHONPATH, no site-packages of .venv), which is how the tests prove that
the predict function runs without scikit-learn. Venvs are cached under ~/.cache/mlfunctions/venvs/, keyed by a
hash of everything that decides their content, and built once under a file lock (several test processes may
ask at once).

    python = function_python(FUNCTIONS_DIR / "predict")
    subprocess.Popen(function_command(fn_dir), env=function_environment(fn_dir, port=8123, extra={...}))
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger("local_openfaas.funcenv")

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
STACK_FILE = FUNCTIONS_DIR / "stack.yml"
IRIS_CLIENT_DIR = REPO_ROOT / "iris-server" / "client"
CACHE_DIR = Path(os.environ.get("MLFUNCTIONS_CACHE") or Path.home() / ".cache" / "mlfunctions") / "venvs"

_COMPLETE = ".mlfunctions-complete"
# Variables a function process inherits from the caller; everything else is set explicitly, as in a container.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


@dataclass(frozen=True)
class FunctionSpec:
    """What functions/stack.yml says about one function folder."""

    name: str
    function_dir: Path
    template_dir: Path
    image: str
    environment: dict[str, str]


def function_spec(function_dir: Path | str) -> FunctionSpec:
    function_dir = Path(function_dir).resolve()
    stack = yaml.safe_load(STACK_FILE.read_text())
    for name, entry in stack["functions"].items():
        if (STACK_FILE.parent / entry["handler"]).resolve() == function_dir:
            return FunctionSpec(
                name=name,
                function_dir=function_dir,
                template_dir=FUNCTIONS_DIR / "template" / entry["lang"],
                image=entry["image"],
                environment={k: str(v) for k, v in (entry.get("environment") or {}).items()},
            )
    raise LookupError(f"{function_dir} is not the handler of any function in {STACK_FILE}")


def _requirement_files(spec: FunctionSpec) -> list[Path]:
    return [spec.template_dir / "requirements.txt", spec.function_dir / "requirements.txt"]


def venv_dir(function_dir: Path | str) -> Path:
    """Where the function's venv lives: one per distinct set of inputs, so editing requirements makes a new
    one."""
    spec = function_spec(function_dir)
    digest = hashlib.sha256()
    # The interpreter behind any venv or symlink, so every checkout on the machine shares one venv per content.
    digest.update(f"{sys.version_info[:3]}|{os.path.realpath(sys.executable)}".encode())
    for path in [*_requirement_files(spec), IRIS_CLIENT_DIR / "pyproject.toml"]:
        digest.update(path.read_bytes())
    return CACHE_DIR / f"{spec.name}-{digest.hexdigest()[:16]}"


def function_python(function_dir: Path | str) -> Path:
    """The python of the function's venv, creating the venv the first time (about a minute; printed to stderr)
    and reinstalling iris-client whenever its source changed (seconds)."""
    spec = function_spec(function_dir)
    target = venv_dir(function_dir)
    python = target / "bin" / "python"
    client_stamp = target / f".iris-client-{_client_digest()}"
    if (target / _COMPLETE).exists() and client_stamp.exists():
        return python
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same venv: wait for it
        if not (target / _COMPLETE).exists():
            _build(spec, target)
            client_stamp.touch()  # the build installed the client as it is now
        if not client_stamp.exists():
            _install_client(python, target, client_stamp)
    return python


def _build(spec: FunctionSpec, target: Path) -> None:
    started = time.monotonic()
    print(
        f"[funcenv] creating the {spec.name} environment in {target} (first time only, about a minute)",
        file=sys.stderr,
        flush=True,
    )
    # A half-built venv from an interrupted run is never trusted: the stamp is written last.
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    requirements = [arg for path in _requirement_files(spec) for arg in ("-r", str(path))]
    _pip(target / "bin" / "python", *requirements, IRIS_CLIENT_DIR)
    (target / _COMPLETE).write_text(spec.image + "\n")
    print(
        f"[funcenv] {spec.name} environment ready in {time.monotonic() - started:.0f}s",
        file=sys.stderr,
        flush=True,
    )


def _install_client(python: Path, target: Path, stamp: Path) -> None:
    # A regular (not editable) install, as in the image: an editable one adds an import hook to every start-
    # up.
    for old in target.glob(".iris-client-*"):
        old.unlink()
    _pip(python, "--no-deps", "--force-reinstall", IRIS_CLIENT_DIR)
    stamp.touch()


def _client_digest() -> str:
    digest = hashlib.sha256()
    for path in [*sorted(IRIS_CLIENT_DIR.glob("iris_client/**/*.py")), IRIS_CLIENT_DIR / "pyproject.toml"]:
        digest.update(path.relative_to(IRIS_CLIENT_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _pip(python: Path, *args: str | Path) -> None:
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            *map(str, args),
        ],
        check=True,
        env=_clean_environment(),
    )


def function_command(function_dir: Path | str) -> list[str]:
    """The command that runs the function's entry point (the template's index.py) in its own venv."""
    spec = function_spec(function_dir)
    return [str(function_python(function_dir)), str(spec.template_dir / "index.py")]


def function_environment(
    function_dir: Path | str, port: int, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The complete environment for a function process: what its image would set, plus `extra` (MODEL_NAME,
    ...).

    It is deliberately not os.environ: only a few basics are inherited, so the development environment cannot
    leak packages or settings into the function."""
    spec = function_spec(function_dir)
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(spec.environment)
    env.update(
        {
            "PORT": str(port),
            "FUNCTION_DIR": str(spec.function_dir),
            "PYTHONUNBUFFERED": "1",
            "PYTHONNOUSERSITE": "1",
        }
    )
    env.update(extra or {})
    return env


def _clean_environment() -> dict[str, str]:
    """For pip: the caller's environment (proxies, index settings) without anything that points at another
    venv."""
    leaky = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {name: value for name, value in os.environ.items() if name not in leaky}
