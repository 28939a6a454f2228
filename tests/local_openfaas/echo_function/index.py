"""A tiny OpenFaaS-style function for the runtime's tests: stdlib only, listens on $PORT.

GET /_/health       -> 200 once serving (after $STARTUP_DELAY seconds, to simulate a slow start)
GET /crash          -> the process exits with code 3 (a crashing replica)
GET /sleep?s=0.5    -> answers after s seconds
GET /cookies        -> two Set-Cookie headers
GET /print?text=... -> writes the text as a line to stdout (the replica's log), then echoes
?status=<code>      -> the echo answered with that status
HEAD anything       -> the echo's headers, no body
anything else       -> 200 JSON echo: method, path, query, body, selected env, pid, secrets it can read

On SIGTERM it does what the functions' template (and OpenFaaS's watchdog) does: it stops accepting connections and
lets the requests in flight finish, then exits.
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

time.sleep(float(os.environ.get("STARTUP_DELAY", "0")))
DRAIN_SECONDS = 5.0
_inflight = 0
_idle = threading.Condition()


def _secrets() -> dict:
    folder = os.environ.get("OPENFAAS_SECRETS_DIR", "/var/openfaas/secrets")
    if not os.path.isdir(folder):
        return {}
    return {name: open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls

    def log_message(self, *args):
        pass

    def _answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        global _inflight
        with _idle:
            _inflight += 1
        try:
            self._echo()
        finally:
            with _idle:
                _inflight -= 1
                _idle.notify_all()

    def _echo(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/_/health":
            return self._answer(200, {"status": "ok"})
        if url.path == "/crash":
            os._exit(3)
        if url.path == "/cookies":
            self.send_response(200)
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        query = parse_qs(url.query)
        if url.path == "/sleep":
            time.sleep(float(query.get("s", ["0.5"])[0]))
        if url.path == "/print":
            print(query.get("text", [""])[0], flush=True)
        self._answer(int(query.get("status", ["200"])[0]), {
            "method": self.command, "path": url.path, "rawPath": self.path, "query": url.query,
            "body": body.decode(errors="replace"), "bodyLength": len(body),
            "pid": os.getpid(), "env": {k: v for k, v in os.environ.items() if k.startswith("ECHO_")},
            "secrets": _secrets(), "forwardedHost": self.headers.get("X-Forwarded-Host"),
            "callId": self.headers.get("X-Call-Id"),
            "modules": sorted(m for m in ("json", "aiohttp", "yaml") if m in sys.modules),
        })

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1234")  # what a GET would return; a HEAD answer has no body
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler)
server.daemon_threads = True  # threads of idle kept-alive connections do not hold the exit
# shutdown() waits for serve_forever() to return, so it cannot run in the handler (on serve_forever's thread).
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
server.serve_forever(poll_interval=0.05)
server.server_close()
with _idle:
    _idle.wait_for(lambda: _inflight == 0, timeout=DRAIN_SECONDS)
