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
    result = subprocess.run(["ctr", "--address", str(paths.socket), "--namespace", "k8s.io", *args],
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
