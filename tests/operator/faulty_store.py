"""A TCP port that plays a broken model store, for the operator's tests: it records every request it receives (time,
method, path) and then drops the connection, answers with a fixed status, or never answers. (A module of its own,
not conftest: every test folder has a conftest.)"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True)
class Seen:
    at: float  # time.monotonic()
    method: str
    path: str


class FaultyStore:
    """`behaviour`: "drop" (close once the request is in), "hang" (keep it open, never answer) or an HTTP status
    to answer with (a JSON body with a message, as the store's own errors have)."""

    def __init__(self, behaviour: str | int = "drop"):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if (method is None or s.method == method) and (path is None or
                                                                                        s.path == path)]

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = b""
        conn.settimeout(5)
        try:
            while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                head += chunk
        except OSError:
            pass
        method, path, *_ = (head.split(b"\r\n", 1)[0].decode(errors="replace").split(" ") + ["", ""])
        with self._lock:
            self._seen.append(Seen(time.monotonic(), method, path))
        if self.behaviour == "hang":
            self._held.append(conn)
            return
        if isinstance(self.behaviour, int):
            body = b'{"message": "scripted failure"}'
            conn.sendall(f"HTTP/1.1 {self.behaviour} Scripted\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        conn.close()
