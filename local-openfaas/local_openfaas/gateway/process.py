"""Running the gateway (runtime included) as a child process: for the local stack, tests and benchmarks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlfunctions_harness import processes
from local_openfaas.gateway import auth


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
    """Start the gateway on 127.0.0.1:`port` and wait until /healthz answers (functions synchronised); raises
    processes.NotHealthy with the end of its log if it exits or is not healthy within `timeout` seconds."""
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
    try:
        processes.wait_healthy(gateway.url + "/healthz", process, "the gateway", log_path, timeout)
    except processes.NotHealthy:
        gateway.stop()
        raise
    return gateway
