"""What runs a function's replicas, behind one interface the runtime, the autoscaler and the gateway share:
`ProcessBackend` (replicas are local processes, with the warm pools; `make up` and most tests) and the pods
backend (`local_openfaas.pods`: replicas are pods of a faas-netes-shaped Deployment on a real node).

A backend prepares a function's image (a process backend resolves it to a program and its virtualenv; a pod
backend has nothing to do, the kubelet pulls it) and then supervises it: a supervisor keeps its replica count,
says which replicas are ready (`pick`, `wait_ready`) and reports a `Snapshot` for the status."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from local_openfaas.runtime.pool import WarmPools
from local_openfaas.runtime.ports import PortAllocator
from local_openfaas.runtime.programs import ProgramResolver
from local_openfaas.runtime.replica import ReplicaLauncher, inherited_env
from local_openfaas.runtime.spec import FunctionSpec
from local_openfaas.runtime.supervisor import FunctionSupervisor, SecretLoader, Snapshot


class ReadyReplica(Protocol):
    """What the gateway needs of a replica to send it a request."""

    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def where(self) -> str: ...  # for error messages: "port 41234", "pod predict-7f9c-x2 (10.244.0.7)"


class Supervisor(Protocol):
    desired: int
    starts: int
    replicas: list

    def pick(self) -> ReadyReplica | None: ...

    async def wait_ready(self, timeout: float) -> ReadyReplica | None: ...

    def scale(self, replicas: int) -> None: ...

    def update(self, spec: FunctionSpec, prepared: object) -> None: ...

    def snapshot(self) -> Snapshot: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    async def prepare(self, spec: FunctionSpec) -> object:
        """The function's image made ready to run (raises UnknownImage, or any error, when it cannot be)."""

    def supervise(self, spec: FunctionSpec, prepared: object, replicas: int,
                  on_change: Callable[[Supervisor], None]) -> Supervisor: ...

    async def close(self) -> None: ...


class ProcessBackend:
    """Replicas as local processes: images map to programs under virtualenvs, warm pools per virtualenv."""

    def __init__(self, programs: ProgramResolver, *, log_dir: Path, pool_dir: Path, secrets: SecretLoader,
                 pool_size: int = 1):
        self.programs = programs
        self._secrets = secrets
        base_env = inherited_env(dict(os.environ))
        self.pools = WarmPools(pool_size, pool_dir, base_env)
        self._launcher = ReplicaLauncher(PortAllocator(), self.pools, log_dir, base_env)

    async def prepare(self, spec: FunctionSpec):
        program = await asyncio.to_thread(self.programs.resolve, spec.image)  # may build a virtualenv
        self.pools.prepare(program)
        return program

    def supervise(self, spec: FunctionSpec, prepared, replicas: int,
                  on_change: Callable[[Supervisor], None]) -> FunctionSupervisor:
        return FunctionSupervisor(spec, prepared, self._launcher, self._secrets, replicas=replicas,
                                  on_change=on_change)

    async def close(self) -> None:
        await self.pools.close()
