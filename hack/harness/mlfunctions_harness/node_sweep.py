"""Removing everything a node left on this machine: processes, mounts, cgroups, network rules, files.

The node's components die with the harness (PDEATHSIG, processes.py), but not what containerd started: each pod's
shim daemonizes, and it and the containers below it outlive a harness killed with SIGKILL, holding mounts and
network namespaces. Everything of one node instance is recognisable by its work dir: every process of the node
names a path under it on its command line (the shims name containerd's socket there), the containers are those
processes' descendants, and every mount (container root filesystems, sandboxes' /dev/shm and network namespaces,
kubelet's volumes) is below it. The containers' cgroups are named by containerd's state there (containerd.py).

`sweep()` is both the teardown of a node stopped on purpose and the clean-up, at the next start, of one that was
killed: the same code, so the path that runs after a crash is the path every run tests. `record_owner()` notes
who runs a node; `sweep_leftovers()`, at a start, sweeps every node whose owner is gone.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from . import containerd, node_network, processes

log = logging.getLogger("mlfunctions_harness.node_sweep")

_MNT_DETACH = 2
OWNER_FILE = "owner.json"
NETWORK_STATE = "network.json"  # node_network's record of what was there before
KEPT = ("logs",)  # what a stopped node leaves in its work dir: the components' logs, for the next person to read
CNI_CACHE = Path("/var/lib/cni/results")   # libcni's cache: one file per pod network attachment
CONTAINER_LOG_LINKS = Path("/var/log/containers")  # kubelet's symlinks to pods' logs (not configurable)


class NodeRunning(RuntimeError):
    """The node's owner is alive: it is not leftovers, and it is not for a sweep to stop."""


def containerd_paths(workdir: Path) -> containerd.ContainerdPaths:
    return containerd.ContainerdPaths(workdir / "containerd")


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


def sweep(workdir: Path, network: bool) -> None:
    """Kill, unmount, remove: after it, nothing of the node at `workdir` is left but its logs (KEPT), including
    what kubelet and libcni wrote outside it. `network`: also remove the node's address and iptables rules (only
    where they are this network namespace's)."""
    ids = containerd.container_ids(containerd_paths(workdir))
    _remove(workdir, containerd.container_cgroups(ids), network)
    for link in CONTAINER_LOG_LINKS.glob("*.log"):
        if link.is_symlink() and str(workdir) + "/" in os.readlink(link):
            link.unlink(missing_ok=True)
    for container_id in ids:  # a pod's attachments (its network, its loopback) are named by its sandbox's ID
        for cached in CNI_CACHE.glob(f"*-{container_id}-*"):
            cached.unlink(missing_ok=True)
    for directory in (CONTAINER_LOG_LINKS, CNI_CACHE, CNI_CACHE.parent):  # made for a node; gone if now empty
        try:
            directory.rmdir()
        except OSError:
            pass


def _remove(workdir: Path, cgroups: list[Path], network: bool) -> None:
    """Processes, then mounts, then cgroups (children first; a parent still holding another node's containers
    stays), then the network, then files."""
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
        node_network.remove(workdir / NETWORK_STATE)
    if workdir.exists():
        for entry in workdir.iterdir():
            if entry.name in KEPT:
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


def _netns() -> str:
    return os.readlink("/proc/self/ns/net")


def record_owner(workdir: Path) -> None:
    """This process runs the node at `workdir` (its start time too, so that a recycled PID is not taken for it), in
    this network namespace."""
    workdir.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "started": _start_time(os.getpid()), "netns": _netns()}
    (workdir / OWNER_FILE).write_text(json.dumps(owner))


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _recorded_owner(workdir: Path) -> dict:
    try:
        return json.loads((workdir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _owner_alive(owner: dict) -> bool:
    pid = owner.get("pid")
    return bool(pid) and processes.pid_alive(pid) and _start_time(pid) == owner.get("started")


def sweep_stopped(workdir: Path) -> None:
    """Sweep a node whose owner is gone. Network state only if it ran in this network namespace (elsewhere, it is
    that namespace's, and goes with it)."""
    owner = _recorded_owner(workdir)
    if _owner_alive(owner):
        raise NodeRunning(f"node {workdir.name} is running (pid {owner['pid']}): stop it rather than sweep it")
    sweep(workdir, network=owner.get("netns", _netns()) == _netns())


def sweep_leftovers(state_root: Path, this: str) -> None:
    """Before a start: sweep every node work dir whose owner is gone (a run that was killed), `this` one included.

    A node still owned by a live process is left alone, unless it is `this` one, which cannot be started twice.
    """
    if not state_root.is_dir():
        return
    for workdir in sorted(p for p in state_root.iterdir() if p.is_dir()):
        owner = _recorded_owner(workdir)
        if _owner_alive(owner):
            if workdir.name == this:
                raise NodeRunning(f"node {this} is running already (pid {owner['pid']}, {workdir})")
            continue
        if owner or workdir.name == this:  # a node stopped cleanly has no owner left, only its logs
            log.info("sweeping what a previous run of node %s left", workdir.name)
            sweep_stopped(workdir)
