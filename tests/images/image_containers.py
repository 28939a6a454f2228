"""Containers of the built images, run the way the chart and faas-netes run pods: uid 65532 with no passwd entry,
read-only root filesystem, only /tmp writable, no capabilities, no network but the container's own loopback (so
nothing reaches out, and servers are asked over real sockets from inside with `docker exec`)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from mlfunctions_harness.images import Image

POD_LIKE = ["--user", "65532:65532", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--network", "none"]
START_TIMEOUT_SECONDS = 60.0


def docker(env: dict[str, str], *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=check, timeout=timeout)


@dataclass
class Container:
    id: str
    env: dict[str, str]

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return docker(self.env, *args, check=check, timeout=timeout)

    def logs(self) -> str:
        result = self.docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        return self.docker("inspect", "--format", "{{.State.Running}}", self.id).stdout.strip() == "true"

    def http_get(self, python: str, url: str) -> tuple[int, str] | None:
        """GET `url` from inside the container (its loopback); None while nothing answers."""
        code = ("import sys, urllib.request, urllib.error\n"
                "try:\n    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
                "except urllib.error.HTTPError as e:\n    r = e\n"
                "except OSError:\n    sys.exit(3)\n"
                "print(r.status); print(r.read().decode())\n")
        result = self.docker("exec", self.id, python, "-c", code, url, check=False)
        if result.returncode == 3:
            return None
        assert result.returncode == 0, result.stderr
        status, _, body = result.stdout.partition("\n")
        return int(status), body

    def wait_http(self, python: str, url: str, status: int = 200) -> tuple[int, str]:
        """The first answer with `status` (a server may say 503 while it gets ready)."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (answer := self.http_get(python, url)) is None or answer[0] != status:
            assert self.running(), f"the container exited:\n{self.logs()}"
            assert time.monotonic() < deadline, f"{url} answered {answer} for {START_TIMEOUT_SECONDS}s:\n{self.logs()}"
            time.sleep(0.1)
        return answer

    def wait_log(self, text: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while text not in (logs := self.logs()):
            assert self.running(), f"the container exited before logging {text!r}:\n{logs}"
            assert time.monotonic() < deadline, f"no {text!r} in the log after {START_TIMEOUT_SECONDS}s:\n{logs}"
            time.sleep(0.1)
        return logs

    def remove(self) -> None:
        self.docker("rm", "--force", "--volumes", self.id, check=False)


def start(image: Image, env: dict[str, str], options: list[str] = (), command: list[str] = ()) -> Container:
    """`docker run --detach` of `image` as a pod runs it, with more `options` (-e, -v) and an optional command."""
    result = subprocess.run(["docker", "run", "--detach", *POD_LIKE, *options, image.tag, *command], env=env,
                            capture_output=True, text=True, check=True)
    return Container(result.stdout.strip(), env)


def run(image: Image, env: dict[str, str], options: list[str] = (), command: list[str] = ()) -> (
        subprocess.CompletedProcess):
    """`docker run --rm` to completion, as a pod runs it (one-off commands, e.g. with --entrypoint)."""
    return subprocess.run(["docker", "run", "--rm", *POD_LIKE, *options, image.tag, *command], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
