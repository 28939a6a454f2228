"""Running the gateway (runtime included) as a child process: for the local stack, tests and benchmarks."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from mlfunctions_harness import processes
from local_openfaas.gateway import auth


class GatewayError(RuntimeError):
    pass


@dataclass
class GatewayProcess:
    url: str
    credentials: auth.BasicAuth
    state_dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def basic_auth(self) -> tuple[str, str]:
        return self.credentials.user, self.credentials.password

    def stop(self) -> None:
        processes.stop(self.process, timeout=20.0)


def start(port: int, state_dir: Path, *, stack_files: list[Path] = (), programs: list[Path] = (),
          kubeconfig: Path | None = None, pool_size: int = 1, autoscale_interval: float = 1.0,
          ready_timeout: float = 60.0, extra_args: list[str] = (), timeout: float = 60.0) -> GatewayProcess:
    """Start the gateway on 127.0.0.1:`port` and wait until /healthz answers (functions synchronised)."""
    credentials = auth.ensure(state_dir / "auth")
    command = [sys.executable, "-m", "local_openfaas.gateway", "--port", str(port), "--state-dir", str(state_dir),
               "--auth-dir", str(state_dir / "auth"), "--pool-size", str(pool_size),
               "--autoscale-interval", str(autoscale_interval), "--ready-timeout", str(ready_timeout)]
    for path in stack_files:
        command += ["--stack-file", str(path)]
    for path in programs:
        command += ["--programs", str(path)]
    if kubeconfig:
        command += ["--kubeconfig", str(kubeconfig)]
    command += list(extra_args)
    log_path = state_dir / "gateway.log"
    process = processes.spawn(command, log_path)
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", credentials, state_dir, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GatewayError(f"the gateway exited with code {process.returncode}:\n{processes.tail(log_path)}")
        try:
            if requests.get(gateway.url + "/healthz", timeout=1).status_code == 200:
                return gateway
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    gateway.stop()
    raise GatewayError(f"the gateway was not healthy within {timeout:.0f}s:\n{processes.tail(log_path)}")


@contextmanager
def running(port: int, state_dir: Path, **options):
    gateway = start(port, state_dir, **options)
    try:
        yield gateway
    finally:
        gateway.stop()
