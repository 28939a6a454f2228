"""A pre-warmed function process: it imports the heavy libraries first, then waits to be told which function to
become and runs that function's entry point in-process, so a cold start pays neither for starting the
interpreter nor for the imports.

Runs under the *function's* interpreter (its virtualenv), so it may import nothing but the standard library:

    <function python> zygote.py --ready-fd N [--preload-dist NAME ...] [--preload-module NAME ...]

Protocol: once the imports are done it writes "ready\\n" to fd N and closes it; then it reads one JSON line
from stdin, {"argv": [script or "-m", module, ...], "cwd": ..., "env": {...}, "log": path, "learn": path, ...}, and
becomes that program: stdout/stderr go to `log`, the environment is exactly `env`, and the entry point runs as
__main__. A few seconds later it writes the library modules the function has imported to `learn` (one per
line): later zygotes preload those too (--preload-file), so they pay for nothing the function imports.

The one difference from a fresh start: a preloaded library that reads its environment at import time (thread
counts such as OMP_NUM_THREADS, say) saw the runtime's basic environment, not the function's.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import runpy
import sys
import threading
import time

# Distributions whose top-level modules are tooling, not something a function imports.
_NEVER_PRELOAD = {"pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources", "distutils-precedence"}


def _modules_of(distributions: list[str]) -> list[str]:
    wanted = {_normalise(d) for d in distributions}
    modules = []
    for module, dists in importlib.metadata.packages_distributions().items():
        if module.startswith("_") or module in _NEVER_PRELOAD:
            continue
        if any(_normalise(d) in wanted for d in dists):
            modules.append(module)
    return sorted(modules)


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _preload(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # a module that fails here fails the same way in the function, with context
            print(f"zygote: preloading {module} failed: {error!r}", file=sys.stderr, flush=True)


def _preload_file(path: str | None) -> list[str]:
    if not path or not os.path.exists(path):
        return []
    with open(path) as listing:
        return [line.strip() for line in listing if line.strip()]


def _learn(path: str, library_paths: tuple[str, ...], moments: list[float]) -> None:
    """At each moment (seconds after the start), add the modules imported so far that are libraries (built in,
    or found on the interpreter's own path: stdlib, site-packages, installed packages) to the list at `path`.
    The list only grows, so replicas that import a little more or less do not make the pool renew its processes
    back and forth. The function's own code is never preloaded: it may read its environment at import time."""
    started = time.monotonic()
    for moment in moments:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        known = _preload_file(path)
        seen = set(known)
        names = list(known)
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None)
            if name in seen or name.startswith("__") or (
                    origin and not os.path.abspath(origin).startswith(library_paths)):
                continue
            names.append(name)
        if len(names) == len(known):
            continue
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w") as listing:
            listing.write("\n".join(names) + "\n")
        os.replace(temporary, path)  # readers see the whole list or none of it


def _become(assignment: dict, library_paths: tuple[str, ...]) -> None:
    log = os.open(assignment["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    os.chdir(assignment["cwd"])
    os.environ.clear()
    os.environ.update(assignment["env"])
    extra_paths = [p for p in assignment["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    argv = list(assignment["argv"])
    if assignment.get("learn"):
        threading.Thread(target=_learn, args=(assignment["learn"], library_paths, assignment["learn_at"]),
                         daemon=True).start()
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        sys.path[:0] = [assignment["cwd"], *extra_paths]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        script = os.path.abspath(argv[0])
        sys.argv = [script, *argv[1:]]
        sys.path[:0] = [os.path.dirname(script), *extra_paths]
        runpy.run_path(script, run_name="__main__")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--preload-dist", action="append", default=[])
    parser.add_argument("--preload-module", action="append", default=[])
    parser.add_argument("--preload-file", action="append", default=[], help="modules to import, one per line")
    options = parser.parse_args()
    # The zygote's own folder must not shadow the function's modules; the function's folder takes its place.
    sys.path.pop(0)
    library_paths = tuple(os.path.join(os.path.abspath(p), "") for p in sys.path if p)

    learned = [name for path in options.preload_file for name in _preload_file(path)]
    _preload(list(dict.fromkeys(options.preload_module + _modules_of(options.preload_dist) + learned)))
    os.write(options.ready_fd, b"ready\n")
    os.close(options.ready_fd)

    line = sys.stdin.readline()
    if not line:
        return  # the pool closed us without an assignment: exit quietly
    _become(json.loads(line), library_paths)


if __name__ == "__main__":
    main()
