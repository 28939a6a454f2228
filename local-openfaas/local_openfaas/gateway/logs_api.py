"""/system/logs, the stream `faas-cli logs` reads: `?name=<fn>&namespace=&instance=&tail=<n>&follow=<bool>&since=<RFC3339>`
answered as newline-delimited JSON, one faas-provider logs.Message per line:
`{"name", "namespace", "instance", "timestamp", "text"}`.

The source is what the runtime writes, one file per replica: `<log_dir>/<namespace>/<name>-<n>.log` (the instance
is `<name>-<n>`). Replicas write to those files directly, without timestamps, so a line already there when the
request came is stamped with its file's last change (when it was written at the latest) and `since` keeps the
files changed since then; a line that arrives while following is stamped when the gateway reads it. `tail` is per
instance, as kubectl's is per pod. Following ends when the client goes away or the gateway stops."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

log = logging.getLogger("mlfunctions.gateway")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a DNS-1123 label: it names a folder under log_dir
POLL_SECONDS = 0.2  # how often a follower looks for new output (the files have no change notification here)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class LogsAPI:
    def __init__(self, log_dir: Path, default_namespace: str, known):
        """`known(namespace, name)` says whether the function is deployed (its logs may outlive it)."""
        self.log_dir, self.default_namespace, self._known = log_dir, default_namespace, known
        self._stopping = asyncio.Event()
        self.open_streams = 0

    async def stop(self, _app=None) -> None:
        self._stopping.set()

    def _files(self, namespace: str, name: str, instance: str = "") -> dict[str, Path]:
        pattern = re.compile(rf"^{re.escape(name)}-(\d+)\.log$")
        folder = self.log_dir / namespace
        found = [(int(m.group(1)), p) for p in folder.glob("*.log") if (m := pattern.match(p.name))] \
            if folder.is_dir() else []
        return {path.stem: path for _, path in sorted(found) if not instance or path.stem == instance}

    async def stream(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        name, namespace = query.get("name", ""), query.get("namespace") or self.default_namespace
        instance = query.get("instance", "")
        if not name:
            return _error(400, "expected ?name=<function> (and optionally namespace, tail, follow, since)")
        if len(namespace) > 63 or not _NAMESPACE.match(namespace):
            return _error(400, f"invalid namespace {namespace!r}: lower-case letters, digits and '-'")
        try:
            tail = int(query.get("tail", "-1") or "-1")
            follow = query.get("follow", "false").lower() in ("1", "true")
            since = datetime.fromisoformat(query["since"]) if query.get("since") else None
            if since is not None and since.tzinfo is None:
                raise ValueError("since needs a time zone")
        except ValueError as error:
            return _error(400, f"tail must be an integer, follow a boolean, since an RFC 3339 time: {error}")
        files = self._files(namespace, name, instance)
        if not files and not self._known(namespace, name):
            return _error(404, f"function {name} not found in namespace {namespace}")

        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        self.open_streams += 1
        ended = "done"
        offsets: dict[str, int] = {}
        try:
            for replica, path in files.items():
                offsets[replica] = await self._history(response, namespace, name, replica, path, tail, since)
            while follow:
                if self._stopping.is_set():
                    ended = "gateway stopping"
                    break
                if request.transport is None or request.transport.is_closing():
                    ended = "client disconnected"
                    break
                for replica, path in self._files(namespace, name, instance).items():
                    offsets[replica] = await self._new_lines(response, namespace, name, replica, path,
                                                             offsets.get(replica, 0))
                await asyncio.sleep(POLL_SECONDS)
        except (ConnectionResetError, ConnectionError):
            ended = "client disconnected"
        finally:
            self.open_streams -= 1
            log.info("log stream ended", extra={"function": name, "namespace": namespace, "reason": ended})
        return response

    async def _history(self, response, namespace, name, instance, path: Path, tail: int, since) -> int:
        data, changed = await asyncio.to_thread(lambda: (path.read_bytes(), path.stat().st_mtime))
        changed = datetime.fromtimestamp(changed, timezone.utc)
        if since is not None and changed < since:
            return len(data)
        lines = data.decode("utf-8", "replace").splitlines()
        if 0 <= tail < len(lines):
            lines = lines[len(lines) - tail:] if tail else []
        stamp = _rfc3339(changed)
        await self._write(response, [(namespace, name, instance, stamp, text) for text in lines])
        return len(data)

    async def _new_lines(self, response, namespace, name, instance, path: Path, offset: int) -> int:
        def read() -> bytes:
            with path.open("rb") as file:
                file.seek(offset)
                return file.read()

        chunk = await asyncio.to_thread(read)
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for its newline
        if not complete:
            return offset
        stamp = _rfc3339(datetime.now(timezone.utc))
        lines = complete.decode("utf-8", "replace").splitlines()
        await self._write(response, [(namespace, name, instance, stamp, text) for text in lines])
        return offset + len(complete)

    @staticmethod
    async def _write(response: web.StreamResponse, messages) -> None:
        if not messages:
            return
        body = "".join(json.dumps({"name": name, "namespace": namespace, "instance": instance, "timestamp": stamp,
                                   "text": text}) + "\n" for namespace, name, instance, stamp, text in messages)
        await response.write(body.encode())
