"""The shared warm pool, tested as an attacker would: two functions on one virtualenv take their replicas from
one pool, and nothing of the first (its secret, its variables, the data it loaded, its processes) reaches the
second. Real gateway process, real zygotes, over real sockets; the function is probe_function/, which reports
what it can see from the inside, and the test reads the processes' /proc from the outside (their start-up
environment, their stdin, and their memory, searched for the first function's secret and data).

Also here: the pool's size is per environment, and its processes and memory are on /metrics."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from local_support import describe, metrics, stop_gateway
from mlfunctions_harness.processes import descendants, free_port, pid_alive, wait_for
from local_openfaas.gateway import process as gateway_process
from local_openfaas.runtime.load import rss_bytes
from local_openfaas.runtime.replica import INHERITED_ENV

pytestmark = pytest.mark.server

PROBE_DIR = Path(__file__).parent / "probe_function"
ENVIRONMENT = Path(sys.executable).parent.parent.name  # the pool's environment label: this virtualenv's folder


def _programs(path: Path, images: dict[str, str]) -> Path:
    """image -> interpreter; every image runs the probe, preloading aiohttp under this virtualenv."""
    path.write_text(yaml.safe_dump({
        image: {"python": python, "argv": [str(PROBE_DIR / "index.py")], "cwd": str(PROBE_DIR),
                "preload": ["aiohttp"] if python == sys.executable else [], "env": {"PROBE_IMAGE": image}}
        for image, python in images.items()}))
    return path


@pytest.fixture
def pool_gateway(tmp_path):
    """A standalone gateway with a pool of one, whose two images are probes on this virtualenv."""
    images = {"localhost/probe-a:test": sys.executable, "localhost/probe-b:test": sys.executable}
    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[_programs(tmp_path / "programs.yaml", images)],
                               pool_size=1, autoscale_interval=0.2, ready_timeout=20.0)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def _system(gw, method: str, path: str, body: dict) -> None:
    response = requests.request(method, gw.url + path, json=body, auth=gw.basic_auth, timeout=30)
    assert response.status_code in (200, 202), response.text


def _deploy(gw, name: str, image: str, env: dict, secret_names: list[str]) -> None:
    """Deployed with scale to zero allowed (after the default 15 minutes idle), so the autoscaler leaves a
    scale to zero through the API alone."""
    _system(gw, "POST", "/system/functions", {"service": name, "image": image, "envVars": env,
                                              "secrets": secret_names, "labels": {"com.openfaas.scale.zero": "true"}})


def _scale(gw, name: str, replicas: int) -> None:
    _system(gw, "POST", f"/system/scale-function/{name}", {"serviceName": name, "replicas": replicas})
    wait_for(lambda: describe(gw, name)["availableReplicas"] == replicas, 30, f"{name} at {replicas} replicas")


def _report(gw, name: str, read: list[str] = ()) -> dict:
    response = requests.get(f"{gw.url}/function/{name}/report", params={"read": list(read)}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _zygotes(gw) -> dict[str, set[int]]:
    """The gateway's zygote processes, told apart from outside: a waiting one still reads its assignment from a
    pipe on stdin, one that became a replica has /dev/null there; "ready" are the waiting ones done preloading
    (the pool logs each), "learned" those of them that also preload what a replica reported it imported."""
    events = [json.loads(line) for line in gw.log_path.read_text().splitlines()
              if '"message": "warm process ready"' in line]
    logged, learned = {e["pid"] for e in events}, {e["pid"] for e in events if e["learned"]}
    found: dict[str, set[int]] = {"waiting": set(), "assigned": set(), "ready": set(), "learned": set()}
    for pid in descendants(gw.process.pid):
        if not any(part.endswith("zygote.py") for part in _cmdline(pid)):
            continue
        try:
            stdin = Path(f"/proc/{pid}/fd/0").readlink()
        except OSError:
            continue  # exited meanwhile
        found["waiting" if str(stdin).startswith("pipe:") else "assigned"].add(pid)
    found["ready"] = found["waiting"] & logged
    found["learned"] = found["waiting"] & learned  # preloads what a replica reported: the pool renews no more
    return found


def _environ_at_start(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").partition("=")[::2] for entry in entries if entry)


def _memory_holds(pid: int, needles: list[bytes]) -> set[bytes]:
    """Which of `needles` appear anywhere in the process's readable memory (read through /proc/<pid>/mem)."""
    found: set[bytes] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or fields[-1] in ("[vvar]", "[vsyscall]"):
                continue
            start, end = (int(part, 16) for part in fields[0].split("-"))
            try:
                memory.seek(start)
                region = memory.read(end - start)
            except OSError:
                continue  # unmapped meanwhile, or a guard page
            found |= {needle for needle in needles if needle in region}
    return found


def _assert_generic(pid: int, leaks: list[bytes]) -> None:
    """A waiting zygote: started with nothing but the runtime's basic variables, and holding no function's
    secret, variable or data in its memory."""
    try:
        environ, held = _environ_at_start(pid), _memory_holds(pid, leaks)
    except (FileNotFoundError, ProcessLookupError):
        assert not pid_alive(pid)
        return  # renewed by the pool meanwhile (it exited): nothing left to hold anything
    assert set(environ) <= set(INHERITED_ENV), f"zygote {pid} started with {sorted(set(environ) - set(INHERITED_ENV))}"
    assert not held, f"zygote {pid} holds a function's secret or data"


def test_a_pool_replica_never_carries_one_functions_secret_or_data_to_another(pool_gateway):
    gw = pool_gateway
    secret_a, secret_b = f"a-secret-{secrets.token_hex(16)}", f"b-secret-{secrets.token_hex(16)}"
    variable_a, model_a = f"a-variable-{secrets.token_hex(16)}", f"a-model-{secrets.token_hex(16)}"
    leaks = [secret_a.encode(), variable_a.encode(), model_a.encode()]
    _system(gw, "POST", "/system/secrets", {"name": "a-token", "value": secret_a})
    _system(gw, "POST", "/system/secrets", {"name": "b-token", "value": secret_b})
    served_a: set[int] = set()
    ever_assigned: set[int] = set()

    def zygotes() -> dict[str, set[int]]:
        seen = _zygotes(gw)
        # A zygote that became a replica is never waiting in the pool again.
        assert not seen["waiting"] & ever_assigned, "a zygote went back to the pool after serving a function"
        ever_assigned.update(seen["assigned"])
        return seen

    # A's first replica starts while the pool is still filling; then its replica comes from the pool.
    _deploy(gw, "fn-a", "localhost/probe-a:test", {"PROBE_A_VARIABLE": variable_a}, ["a-token"])
    wait_for(lambda: describe(gw, "fn-a")["availableReplicas"] == 1, 30, "fn-a's first replica")
    first = _report(gw, "fn-a")
    served_a.add(first["pid"])
    a_dirs = {first["secretsDir"]}
    _scale(gw, "fn-a", 0)
    waiting = wait_for(lambda: zygotes()["ready"], 60, "a zygote ready in the pool")
    for pid in waiting:
        _assert_generic(pid, leaks)
    [zygote_a] = waiting  # pool size 1

    _scale(gw, "fn-a", 1)
    a = _report(gw, "fn-a")
    assert a["pid"] == zygote_a, (a, zygote_a)
    assert any(part.endswith("zygote.py") for part in a["cmdline"]), "not from the pool"
    assert a["environ"]["PROBE_A_VARIABLE"] == variable_a
    assert a["secrets"] == {"a-token": {"content": secret_a}}
    served_a.add(a["pid"])
    a_dirs.add(a["secretsDir"])
    loaded = requests.post(f"{gw.url}/function/fn-a/load", data=model_a, timeout=30).json()
    assert loaded == {"pid": zygote_a, "loaded": 1000 * len(model_a)}
    # The search finds what is there: A's replica holds its secret, its variable and its data.
    assert _memory_holds(zygote_a, leaks) == set(leaks)

    # The pool refills with a new, generic zygote while A runs; once A's replica has reported the library
    # modules it imported (LEARN_AT[0] after its start) the pool renews it with one that preloads them too.
    refill = wait_for(lambda: zygotes()["learned"], 30, "the pool's next zygote, preloading what fn-a imported")
    assert zygote_a not in zygotes()["waiting"] and zygote_a in ever_assigned
    for pid in refill:
        _assert_generic(pid, leaks)

    # A goes away: its replica's process and its secrets folder with it.
    _scale(gw, "fn-a", 0)
    wait_for(lambda: not any(pid_alive(pid) for pid in served_a), 20, "fn-a's processes to exit")
    # (removed right after the process is reaped)
    wait_for(lambda: not any(Path(folder).exists() for folder in a_dirs), 5, "fn-a's secrets folders to go")
    _system(gw, "DELETE", "/system/functions", {"functionName": "fn-a"})

    # B, on the same virtualenv, gets a zygote from the pool, and looks for anything of A's.
    for pid in wait_for(lambda: zygotes()["learned"], 30, "a zygote ready for fn-b"):
        _assert_generic(pid, leaks)
    _deploy(gw, "fn-b", "localhost/probe-b:test", {"PROBE_B_VARIABLE": "b"}, ["b-token"])
    wait_for(lambda: describe(gw, "fn-b")["availableReplicas"] == 1, 30, "fn-b's replica")
    a_files = [*sorted(a_dirs), *(str(Path(folder) / "a-token") for folder in sorted(a_dirs)),
               *(f"/proc/{pid}/environ" for pid in sorted(served_a))]
    b = _report(gw, "fn-b", read=a_files)
    assert any(part.endswith("zygote.py") for part in b["cmdline"]), "not from the pool"
    assert b["pid"] not in served_a and b["pid"] in zygotes()["assigned"]
    assert b["environ"]["PROBE_IMAGE"] == "localhost/probe-b:test"
    for environ in (b["environ"], b["environAtStart"], _environ_at_start(b["pid"])):
        assert "PROBE_A_VARIABLE" not in environ and variable_a not in environ.values()
        assert secret_a not in environ.values()
    assert b["secretsDir"] not in a_dirs
    assert b["secrets"] == {"b-token": {"content": secret_b}}
    assert b["read"] == {path: {"error": "FileNotFoundError"} for path in a_files}
    assert not [fd for fd in b["fds"] if "fn-a" in fd or any(folder in fd for folder in a_dirs)], b["fds"]
    assert b["loaded"] == 0
    assert not _memory_holds(b["pid"], leaks), "fn-b's process holds fn-a's secret, variable or data"

    # A zygote serves one function for its life: B's replica going away ends its process, the next is another
    # process, and removing the function ends that one too.
    for pid in zygotes()["waiting"]:
        _assert_generic(pid, leaks)
    _scale(gw, "fn-b", 0)
    wait_for(lambda: not pid_alive(b["pid"]), 20, "fn-b's zygote to exit")
    _scale(gw, "fn-b", 1)
    again = _report(gw, "fn-b")["pid"]
    assert again not in {b["pid"], *served_a}
    _system(gw, "DELETE", "/system/functions", {"functionName": "fn-b"})
    wait_for(lambda: not pid_alive(again), 20, "fn-b's last replica to exit with the function")
    assert not zygotes()["assigned"]  # every zygote that served a function is gone; only generic ones wait


@pytest.fixture
def second_virtualenv(tmp_path) -> str:
    """Another environment: a bare virtualenv (no pip, nothing installed; the probe needs only the stdlib)."""
    folder = tmp_path / "other-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return str(folder / "bin" / "python")


def _pool_series(gw) -> dict[str, tuple[float, float]]:
    samples = metrics(gw)
    prefix = 'local_openfaas_pool_processes{environment="'
    return {key[len(prefix):-2]: (value, samples[f'local_openfaas_pool_rss_bytes{{environment="{key[len(prefix):-2]}"}}'])
            for key, value in samples.items() if key.startswith(prefix)}


def test_the_pool_size_is_per_environment_and_its_memory_is_on_metrics(tmp_path, second_virtualenv):
    images = {"localhost/probe-a:test": sys.executable, "localhost/probe-b:test": sys.executable,
              "localhost/probe-other:test": second_virtualenv}
    gw = gateway_process.start(free_port(), tmp_path / "gw", programs=[_programs(tmp_path / "programs.yaml", images)],
                               pool_size=2, autoscale_interval=0.2, ready_timeout=20.0)
    try:
        assert _pool_series(gw) == {}  # no function, no environment, no pool
        _deploy(gw, "fn-a", "localhost/probe-a:test", {}, [])
        _deploy(gw, "fn-b", "localhost/probe-b:test", {}, [])  # the same virtualenv: the same pool
        _deploy(gw, "fn-other", "localhost/probe-other:test", {}, [])
        for name in ("fn-a", "fn-b", "fn-other"):
            wait_for(lambda n=name: describe(gw, n)["availableReplicas"] == 1, 30, f"{name}'s replica")
        environments = {ENVIRONMENT, "other-env"}
        waiting = wait_for(lambda: len(z := _zygotes(gw)["ready"]) == 4 and z, 60, "two zygotes ready per environment")
        series = _pool_series(gw)
        assert set(series) == environments and all(count == 2 for count, _ in series.values()), series
        # The memory is the zygotes' resident memory, as /proc has it (read again here: it moves a little).
        for environment, (_, rss) in series.items():
            pids = [pid for pid in waiting if Path(_cmdline(pid)[0]).parent.parent.name == environment]
            measured = sum(rss_bytes(pid) or 0 for pid in pids)
            assert len(pids) == 2 and measured > 5_000_000
            assert abs(rss - measured) < 0.2 * measured, (environment, rss, measured)
        # The preloaded environment costs more than the bare one (aiohttp is imported in its zygotes).
        assert series[ENVIRONMENT][1] > series["other-env"][1]
    finally:
        gw.stop()
