"""What every part of `make up` shares: its error type, running helm and kubectl, probing a port, and its voice."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


class StackError(RuntimeError):
    """`up` cannot go on; the message names the cause and the command that fixes it."""


def helm() -> str:
    """The helm binary (hack/helm.sh builds it the first time, in minutes: what it says on stderr reaches the
    terminal)."""
    built = subprocess.run(["bash", str(REPO_ROOT / "hack" / "helm.sh")], stdout=subprocess.PIPE, text=True,
                           check=False)
    if built.returncode != 0:
        raise StackError("hack/helm.sh could not provide helm (see above)")
    return built.stdout.strip()


def run(command: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, text=True, capture_output=True, check=False)
    if result.returncode != 0:
        raise StackError(f"{Path(command[0]).name} {' '.join(command[1:4])} ... failed: {result.stderr.strip()}")
    return result.stdout


def port_free(port: int, what: str, flag: str) -> None:
    """StackError naming the port, its owner when it can be found, and the flag choosing another, if it is taken."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no owner
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(f"127.0.0.1:{port} is taken{_owner(port)}; stop it, or choose another port for "
                             f"{what} with {flag}") from None


def _owner(port: int) -> str:
    """ ' by pid N (command line)' for the process listening on 127.0.0.1:`port`, when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    if not inodes:
        return ""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            sockets = {Path(link).name for link in (str(p.readlink()) for p in (entry / "fd").iterdir())}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in sockets for inode in inodes):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmdline = "?"
            return f" by pid {entry.name} ({cmdline[:120]})"
    return ""


def say(message: str, command: str = "up") -> None:
    print(f"[{command} {time.strftime('%H:%M:%S')}] {message}", flush=True)
