"""A TCP proxy in front of iris-server that misbehaves on purpose, to test the client's retries over real
sockets.

    python iris_flaky_proxy.py LISTEN_PORT TARGET_PORT --drop-post-responses N --answer-503 N

--drop-post-responses N: the first N POSTs reach the server, but the proxy hangs up before relaying the answer
    (the server did the work; the client never hears of it).
--answer-503 N: the first N requests are answered 503 by the proxy itself, never reaching the server.
--cut-downloads N: the first N artifact downloads are cut off after their first 64 KiB.
Prints "ready" once listening.
"""

from __future__ import annotations

import argparse
import socket
import threading

from mlfunctions_harness.tcp_pump import pump

_lock = threading.Lock()
_budget = {"drop": 0, "503": 0, "cut": 0}
_CUT_AFTER_BYTES = 64 * 1024


def _take(kind: str) -> bool:
    with _lock:
        if _budget[kind] > 0:
            _budget[kind] -= 1
            return True
        return False


def _read_request(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _serve(client: socket.socket, target_port: int) -> None:
    with client:
        request = _read_request(client)
        if not request:
            return
        if _take("503"):
            client.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Content-Length: 52\r\n"
                b'Connection: close\r\n\r\n{"error":"unavailable","message":"injected by proxy"}'
            )
            return
        with socket.create_connection(("127.0.0.1", target_port)) as upstream:
            upstream.sendall(request)
            if request.startswith(b"POST") and _take("drop"):
                upstream.recv(1)  # the server has answered, so it did the work; the client never learns of it
                return
            if request.startswith(b"GET") and b"/artifact " in request.split(b"\r\n", 1)[0] and _take("cut"):
                relayed = 0
                while relayed < _CUT_AFTER_BYTES and (chunk := upstream.recv(_CUT_AFTER_BYTES - relayed)):
                    client.sendall(chunk)
                    relayed += len(chunk)
                return  # hang up mid-body
            back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
            back.start()
            pump(client, upstream)
            back.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("listen_port", type=int)
    parser.add_argument("target_port", type=int)
    parser.add_argument("--drop-post-responses", type=int, default=0)
    parser.add_argument("--answer-503", type=int, default=0)
    parser.add_argument("--cut-downloads", type=int, default=0)
    args = parser.parse_args()
    _budget.update({"drop": args.drop_post_responses, "503": args.answer_503, "cut": args.cut_downloads})
    listener = socket.create_server(("127.0.0.1", args.listen_port))
    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, args.target_port), daemon=True).start()


if __name__ == "__main__":
    main()
