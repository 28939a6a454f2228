"""A Secret volume laid out and updated the way the kubelet does it (its AtomicWriter): the files live in a
timestamped directory `..<timestamp>`, `..data` is a symlink to it, and each key is a symlink `<key> ->
..data/<key>`. An update writes a new timestamped directory, points a new symlink at it and renames that over
`..data` (one atomic rename), then removes the old directory: a reader sees the old pair or the new one, never
a mix, and the paths of the files never change."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


class SecretVolume:
    def __init__(self, path: Path):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)

    def write(self, data: dict[str, str]) -> None:
        old = os.readlink(self.path / "..data") if (self.path / "..data").is_symlink() else None
        stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
        directory = self.path / stamp
        directory.mkdir()
        for key, value in data.items():
            (directory / key).write_text(value)
            (directory / key).chmod(0o644)
        (self.path / "..data_tmp").symlink_to(stamp)
        os.rename(self.path / "..data_tmp", self.path / "..data")
        for key in data:
            if not (self.path / key).is_symlink():
                (self.path / key).symlink_to(Path("..data") / key)
        if old is not None:
            shutil.rmtree(self.path / old)
