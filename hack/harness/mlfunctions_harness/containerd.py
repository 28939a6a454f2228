"""The node's own containerd: Debian's containerd and runc, with root, state and socket in the node's work dir.

It runs beside any other containerd (docker's included) without sharing anything. Its CRI plugin is set up the way
this machine needs: `restrict_oom_score_adj` (a process here cannot lower its oom_score_adj, and without it every
pod sandbox, which asks for -998, fails in runc with "can't get final child's PID from pipe: EOF"), the cgroupfs
driver (PID 1 is not systemd), overlayfs snapshots, the CNI plugins from Debian's package with a conf dir of ours,
and network namespaces mounted under its state dir rather than /run/netns, so that everything it mounts is under
the work dir and a sweep finds it. Images come from archives (`import_image`), never from a registry.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from . import processes

CNI_BIN_DIR = "/usr/lib/cni"  # containernetworking-plugins
CRI_NAMESPACE = "k8s.io"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class ContainerdError(RuntimeError):
    """containerd could not be started or an image not imported; the message ends with what it said."""


@dataclass(frozen=True)
class ContainerdPaths:
    """Where one containerd instance keeps everything, all below `base`."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def socket(self) -> Path:
        return self.base / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def log(self) -> Path:
        return self.base / "containerd.log"

    @property
    def tasks(self) -> Path:
        """One directory per container of the CRI's namespace, named by its ID, while the container exists."""
        return self.state / "io.containerd.runtime.v2.task" / CRI_NAMESPACE


def container_ids(paths: ContainerdPaths) -> list[str]:
    """The IDs of this containerd's containers (pod sandboxes included) that have not been deleted."""
    return [task.name for task in paths.tasks.iterdir()] if paths.tasks.is_dir() else []


def container_pid(paths: ContainerdPaths, container_id: str) -> int:
    """The host PID of a running container's first process (its shim writes it down)."""
    return int((paths.tasks / container_id / "init.pid").read_text())


def container_cgroups(ids: list[str]) -> list[Path]:
    """The cgroups of these containers, then their parents. With the cgroupfs driver and no QoS hierarchy, runc
    puts each at /<namespace>/<container ID> in every hierarchy; a shim killed with SIGKILL leaves it behind."""
    hierarchies = [h for h in CGROUP_ROOT.iterdir() if (h / CRI_NAMESPACE).is_dir()]
    return [h / CRI_NAMESPACE / i for h in hierarchies for i in ids if (h / CRI_NAMESPACE / i).is_dir()] + [
        h / CRI_NAMESPACE for h in hierarchies]


def config_toml(paths: ContainerdPaths, sandbox_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{paths.root}"
state = "{paths.state}"
# Snapshotters that cannot work here only add noise to the log.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{paths.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.root / 'opt'}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{paths.cni_conf_dir}"
"""


def start(paths: ContainerdPaths, sandbox_image: str, timeout: float = 30.0) -> subprocess.Popen:
    """Write the config, start containerd and wait until it answers on its socket."""
    for directory in (paths.root, paths.state, paths.cni_conf_dir):
        directory.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(config_toml(paths, sandbox_image))
    process = processes.spawn(["containerd", "--config", str(paths.config)], paths.log)

    def answering() -> bool:
        if process.poll() is not None:
            raise ContainerdError(f"containerd exited with {process.returncode}:\n{processes.tail(paths.log)}")
        return paths.socket.exists() and _ctr(paths, "version", check=False).returncode == 0

    try:
        processes.wait_for(answering, timeout, "containerd to answer", interval=0.05)
    except TimeoutError as error:
        processes.stop(process)
        raise ContainerdError(f"{error}:\n{processes.tail(paths.log)}") from None
    return process


def _ctr(paths: ContainerdPaths, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ctr", "--address", str(paths.socket), "--namespace", CRI_NAMESPACE, *args],
                            capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ContainerdError(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def import_image(paths: ContainerdPaths, archive: Path) -> None:
    """Import an OCI or docker-archive tar into the CRI's namespace, unpacked for the overlayfs snapshotter."""
    _ctr(paths, "images", "import", "--snapshotter", "overlayfs", str(archive))


def image_names(paths: ContainerdPaths) -> list[str]:
    return _ctr(paths, "images", "list", "--quiet").stdout.split()


def archive_image_name(archive: Path) -> str:
    """The name an OCI archive written by hack/oci-archive.sh is imported under."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    return index["manifests"][0]["annotations"]["io.containerd.image.name"]
