"""Ports for function replicas on 127.0.0.1."""

from __future__ import annotations

from mlfunctions_harness.processes import free_port


class PortAllocator:
    """Hands out free loopback ports and never hands out one that a live replica of ours still holds (the kernel
    may offer a port again once the probe socket is closed, even while our replica is still starting on it)."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def allocate(self) -> int:
        while True:
            port = free_port()
            if port not in self._held:
                self._held.add(port)
                return port

    def release(self, port: int) -> None:
        self._held.discard(port)
