"""One running copy of a function: a process on its own loopback port, ready once GET /_/health answers 2xx."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlfunctions_harness import processes

from local_openfaas.runtime.pool import WarmPools
from local_openfaas.runtime.ports import PortAllocator
from local_openfaas.runtime.programs import Program
from local_openfaas.runtime.spec import FunctionSpec

HEALTH_PATH = "/_/health"
READY_PATH_ANNOTATION = "com.openfaas.ready.http.path"  # OpenFaaS's per-function readiness probe path
# Variables a function inherits from the runtime's environment (everything else comes from its Function).
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                 "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "XDG_CACHE_HOME")
_ids = itertools.count(1)


@dataclass
class Replica:
    spec: FunctionSpec
    port: int
    process: subprocess.Popen
    exited: asyncio.Future
    log_path: Path
    secrets_dir: Path | None
    warm: bool
    started_at: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    stopping: bool = False
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def where(self) -> str:
        return f"port {self.port}"

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and not self.exited.done() and not self.stopping

    async def wait_ready(self, timeout: float) -> bool:
        """Probe the health endpoint until it answers (True) or the process exits / `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        path = self.spec.annotations.get(READY_PATH_ANNOTATION, HEALTH_PATH)
        # A replica from the pool is up in milliseconds: probe every millisecond at first, so the probe adds at
        # most one to its start (a refused connect is a few microseconds of kernel work on loopback, and the
        # functions' server listens only once its start-up is over), then back off.
        delay = 0.001
        while time.monotonic() < deadline and not self.exited.done() and not self.stopping:
            if await http_ok(self.port, path):
                self.ready_at = time.monotonic()
                return True
            await asyncio.sleep(delay)
            starting_for = time.monotonic() - self.started_at
            if starting_for > 0.2:
                delay = min(delay * 1.5, 0.1 if starting_for > 2.0 else 0.01)
        return False

    async def stop(self, grace: float) -> None:
        self.stopping = True
        await processes.terminate(self.process, self.exited, grace)
        if self.secrets_dir is not None:
            shutil.rmtree(self.secrets_dir, ignore_errors=True)


class ReplicaLauncher:
    """Starts replicas: from the warm pool when it has a process ready, else as a fresh interpreter."""

    def __init__(self, ports: PortAllocator, pools: WarmPools, log_dir: Path, base_env: dict[str, str]):
        self.ports, self.pools, self.log_dir, self.base_env = ports, pools, log_dir, base_env

    def launch(self, spec: FunctionSpec, program: Program, secrets: dict[str, bytes]) -> Replica:
        port = self.ports.allocate()
        replica_id = next(_ids)
        log_path = self.log_dir / spec.namespace / f"{spec.name}-{replica_id}.log"
        secrets_dir = _write_secrets(secrets) if secrets else None
        env = {**self.base_env, **dict(program.env), **spec.environment, "PORT": str(port)}
        if secrets_dir is not None:
            env["OPENFAAS_SECRETS_DIR"] = str(secrets_dir)
        warm = self.pools.take(program)
        try:
            if warm is not None:
                warm.become(program, env, log_path)
                process, exited = warm.process, warm.exited
            else:
                process = processes.spawn(program.command, log_path, cwd=program.cwd, env=env)
                exited = processes.exit_future(process)
        except BaseException:
            self.ports.release(port)
            if secrets_dir is not None:
                shutil.rmtree(secrets_dir, ignore_errors=True)
            raise
        exited.add_done_callback(lambda _: self.ports.release(port))
        return Replica(spec=spec, port=port, process=process, exited=exited, log_path=log_path,
                       secrets_dir=secrets_dir, warm=warm is not None, id=replica_id)


async def http_ok(port: int, path: str = HEALTH_PATH, timeout: float = 1.0, host: str = "127.0.0.1") -> bool:
    """Whether GET http://<host>:<port><path> answers 2xx (the readiness probe; raw HTTP/1.0, no pooling)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError):
        return False
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return len(parts) >= 2 and parts[1][:1] == b"2"
    except (TimeoutError, OSError):
        return False
    finally:
        writer.close()


def inherited_env(environ: dict[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in INHERITED_ENV if name in environ}


def _write_secrets(secrets: dict[str, bytes]) -> Path:
    """A private folder with one file per secret key, as OpenFaaS mounts them under /var/openfaas/secrets."""
    folder = Path(tempfile.mkdtemp(prefix="mlfunctions-secrets-"))  # mode 0700
    for name, value in secrets.items():
        path = folder / name
        path.touch(mode=0o600)
        path.write_bytes(value)
    return folder
