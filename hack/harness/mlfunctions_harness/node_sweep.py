"""Removing everything a node left on this machine: processes, mounts, cgroups, network rules, files.

The node's components die with the harness (PDEATHSIG, processes.py), but not what containerd started: each pod's
shim daemonizes, and it and the containers below it outlive a harness killed with SIGKILL, holding mounts and
network namespaces. Everything of one node instance is recognisable by its work dir: every process of the node
names a path under it on its command line (the shims name containerd's socket there), the containers are those
processes' descendants, and every mount (container root filesystems, sandboxes' /dev/shm and network namespaces,
kubelet's volumes) is below it. The containers' cgroups are named by containerd's state there (containerd.py).

`sweep()` is both the teardown of a node stopped on purpose and the clean-up, at the next start, of one that was
killed: the same code, so the path that runs after a crash is the path every run tests.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from . import node_network, processes

log = logging.getLogger("mlfunctions_harness.node_sweep")

_MNT_DETACH = 2


def processes_of(workdir: Path) -> list[int]:
    """The live processes of a node: those naming its work dir on their command line, and their descendants."""
    marker = str(workdir).encode() + b"/"  # the slash: instance "node" is not instance "node-2"
    spare = {os.getpid(), *_ancestors(os.getpid())}
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spare:
            continue
        try:
            command_line = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in command_line:
            roots.append(int(entry.name))
    found = set(roots)
    for pid in roots:
        found.update(processes.descendants(pid))
    return sorted(pid for pid in found - spare if processes.pid_alive(pid))


def _ancestors(pid: int) -> list[int]:
    found = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        found.append(pid)
    return found


def mounts_under(workdir: Path) -> list[str]:
    """Mount points at or below the work dir, deepest first (as this mount namespace sees them)."""
    prefix = str(workdir)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # mountinfo writes a space as \040
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def sweep(workdir: Path, cgroups: list[Path], network: bool, keep: tuple[str, ...] = ()) -> None:
    """Kill, unmount, remove: after it, nothing of the node at `workdir` is left but the entries named in `keep`.

    `cgroups`: the containers' cgroups, children first, removed once their processes are gone (those still in use
    by someone else stay). `network`: also remove the node's
    address and iptables rules (only where they are this network namespace's).
    """
    _kill_all(workdir)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    for point in mounts_under(workdir):
        # Lazily: a mount still busy is detached now and freed when its last user goes.
        if libc.umount2(point.encode(), _MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            log.warning("could not unmount %s: %s", point, os.strerror(ctypes.get_errno()))
    for directory in cgroups:
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:  # a parent still holding another node's containers stays
            log.debug("cgroup %s stays: %s", directory, error)
    if network:
        node_network.remove()
    if workdir.exists():
        for entry in workdir.iterdir():
            if entry.name in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _kill_all(workdir: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while pids := processes_of(workdir):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            log.warning("processes of %s still alive after SIGKILL: %s", workdir, pids)
            return
        time.sleep(0.05)
