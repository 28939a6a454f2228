"""The OpenFaaS gateway's basic-auth credentials, as an httpx.Auth for the gateway client.

In a cluster they are files: the chart mounts the Secret `openfaas.gatewaySecret` as a volume (`basic-auth-user`,
`basic-auth-password`, as OpenFaaS mounts its own) and sets MLFUNCTIONS_GATEWAY_CREDENTIALS_DIR. The kubelet
updates such a volume in place when the Secret changes: it writes the new files into a new directory and swaps
the `..data` symlink to it atomically, so the visible files are always a complete pair. Each request stats the
two files (a few microseconds, no read) and reads them again only when what they resolve to changed: a corrected
Secret is used by the next request, without a restart, and GatewayUnauthorized clears at the next pass.

Without a directory (a development run), the credentials are MLFUNCTIONS_GATEWAY_USERNAME/_PASSWORD, fixed.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Generator
from pathlib import Path

import httpx

USER_FILE, PASSWORD_FILE = "basic-auth-user", "basic-auth-password"


class CredentialsUnreadable(Exception):
    """The credential files are missing or unreadable (the volume is not mounted, or the Secret lacks a key)."""


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class StaticCredentials(httpx.Auth):
    """Credentials given once (environment)."""

    def __init__(self, username: str, password: str):
        self._header = basic_header(username, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class FileCredentials(httpx.Auth):
    """Credentials read from `directory`/basic-auth-user and /basic-auth-password, again whenever they change."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._seen: tuple | None = None  # (device, inode, mtime, size) of both files when last read
        self._header = ""

    def header(self) -> str:
        """The Authorization header for the files as they are now. Raises CredentialsUnreadable."""
        paths = (self.directory / USER_FILE, self.directory / PASSWORD_FILE)
        try:
            # stat follows the symlinks: after a swap of ..data the files resolve to new inodes.
            seen = tuple((s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size) for s in map(os.stat, paths))
            if seen != self._seen:
                username, password = (path.read_text().strip() for path in paths)  # as OpenFaaS reads them
                self._header, self._seen = basic_header(username, password), seen
        except OSError as error:
            raise CredentialsUnreadable(f"cannot read the gateway's credentials from {self.directory} "
                                        f"({USER_FILE}, {PASSWORD_FILE}): {error.strerror}: "
                                        f"{error.filename}") from None
        return self._header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header()
        yield request
