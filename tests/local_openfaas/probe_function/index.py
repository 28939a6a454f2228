"""A function that looks around as an attacker would, for the warm pool's isolation tests: stdlib only, listens
on $PORT.

GET /_/health            -> 200
POST /load               -> keeps the body in memory, a thousand times over (a "model" loaded from a secret)
GET /report?read=PATH... -> JSON: pid, its command line, its whole environment (os.environ and the one it was
                            started with, /proc/self/environ), OPENFAAS_SECRETS_DIR and the files in it, its open
                            file descriptors, and for each PATH asked for its contents or why they could not be read
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODEL: list[bytes] = []


def _read(path: str) -> dict:
    try:
        if os.path.isdir(path):
            return {"listing": sorted(os.listdir(path))}
        with open(path, "rb") as file:
            return {"content": file.read().decode(errors="replace")}
    except OSError as error:
        return {"error": type(error).__name__}


def _environ_at_start() -> dict:
    with open("/proc/self/environ", "rb") as file:
        entries = [entry.decode(errors="replace") for entry in file.read().split(b"\0") if entry]
    return dict(entry.partition("=")[::2] for entry in entries)


def _fds() -> list[str]:
    targets = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the descriptor listdir itself had open
    return targets


def _report(query: dict) -> dict:
    secrets_dir = os.environ.get("OPENFAAS_SECRETS_DIR")
    return {
        "pid": os.getpid(), "argv": sys.argv, "cmdline": open("/proc/self/cmdline").read().split("\0"),
        "environ": dict(os.environ), "environAtStart": _environ_at_start(), "secretsDir": secrets_dir,
        "secrets": {n: _read(os.path.join(secrets_dir, n)) for n in sorted(os.listdir(secrets_dir))}
        if secrets_dir and os.path.isdir(secrets_dir) else {},
        "fds": _fds(), "read": {path: _read(path) for path in query.get("read", [])},
        "loaded": sum(map(len, MODEL)),
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_/health":
            return self._answer({"status": "ok"})
        return self._answer(_report(parse_qs(url.query)))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        MODEL.append(body * 1000)
        return self._answer({"pid": os.getpid(), "loaded": sum(map(len, MODEL))})


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever(poll_interval=0.05)
