"""Ports for function replicas on 127.0.0.1."""

from __future__ import annotations

import socket


class PortAllocator:
    """Hands out free loopback ports and never hands out one that a live replica of ours still holds."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def allocate(self) -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port not in self._held:
                self._held.add(port)
                return port

    def release(self, port: int) -> None:
        self._held.discard(port)
