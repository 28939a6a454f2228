"""A real S3-compatible server for tests: SeaweedFS (built by hack/seaweedfs.sh) as one `weed server` process
running its master, volume server, filer and S3 gateway on loopback ports, with one access key.

    s3 = seaweedfs.start(tmp_path / "s3")
    s3.create_bucket("models")
    ... s3.endpoint, s3.access_key, s3.secret_key ...
    s3.stop(); s3.start()  # an outage and a recovery, same ports, same data
    s3.stop()

Nothing leaves the machine: every listener binds 127.0.0.1 (or the address given: the node suite gives the
node's, on lo) and the master's anonymous usage report is off.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mlfunctions_harness import processes

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "seaweedfs.sh"
REGION = "us-east-1"
# Virtual-host addressing: <bucket>.<VIRTUAL_HOST_DOMAIN> is parsed by the gateway as the bucket.
VIRTUAL_HOST_DOMAIN = "s3.mlfunctions.test"


class SeaweedFSError(RuntimeError):
    pass


def binary() -> Path:
    """The weed executable, built once (cached in ~/.cache/mlfunctions/seaweedfs) by hack/seaweedfs.sh."""
    built = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if built.returncode != 0:
        raise SeaweedFSError("hack/seaweedfs.sh could not provide SeaweedFS (see its output above)")
    return Path(built.stdout.strip()) / "weed"


@dataclass
class Ports:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int

    @classmethod
    def free(cls) -> Ports:
        return cls(*(processes.free_port() for _ in range(8)))


@dataclass
class SeaweedFS:
    state_dir: Path
    ports: Ports
    access_key: str
    secret_key: str
    timeout: float = 60.0
    host: str = "127.0.0.1"  # every listener's address (the node's, for pods to reach it)
    process: subprocess.Popen | None = None
    _executable: Path = field(default_factory=binary)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "weed.log"

    def client(self, **config) -> boto3.client:
        """A boto3 S3 client of the configured identity (path-style unless `config` says otherwise)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
        )

    def start(self) -> SeaweedFS:
        """Start (or restart on the same ports and data) and wait until an object can be written and read."""
        data = self.state_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config_path = self.state_dir / "s3.json"
        config_path.write_text(json.dumps(self._identities()))
        config_path.chmod(0o600)
        p = self.ports
        command = [
            str(self._executable), "server",
            f"-ip={self.host}", f"-ip.bind={self.host}", f"-dir={data}",
            # Off: the anonymous usage report (a request to the internet); the URL points home in case.
            "-master.telemetry=false", "-master.telemetry.url=http://127.0.0.1:9/",
            f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}",
            # Each bucket grows 7 volumes; 0 = as many as the disk has room for. Volume files grow as written, and a
            # small size limit keeps a test run's disk use small.
            "-master.volumeSizeLimitMB=512", "-volume.max=0",
            "-volume.preStopSeconds=0",  # it would wait 10 s before stopping, for clients to move away
            # One master: a restart elects itself after this timeout (10 s by default).
            "-master.electionTimeout=1s",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}",
            "-filer", f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}",
            f"-filer.localSocket={self.state_dir / 'filer.sock'}",
            "-s3", f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}", f"-s3.config={config_path}",
            f"-s3.localSocket={self.state_dir / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.domainName={VIRTUAL_HOST_DOMAIN}",
        ]
        self.process = processes.spawn(command, self.log_path, cwd=self.state_dir)
        try:
            processes.wait_healthy(f"{self.endpoint}/healthz", self.process, "SeaweedFS S3", self.log_path,
                                   self.timeout)
            self._wait_writable()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, timeout=20.0)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def _identities(self) -> dict:
        return {"identities": [{
            "name": "iris-server",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}

    def _wait_writable(self) -> None:
        """The gateway answers before the volume server has registered with the master: until then writes
        fail. Probe with a real object in a bucket of the harness's own."""
        client = self.client()
        last = "no attempt yet"

        def round_trip() -> bool:
            nonlocal last
            try:
                if "harness-probe" not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
                    client.create_bucket(Bucket="harness-probe")
                client.put_object(Bucket="harness-probe", Key="probe", Body=b"ok")
                return client.get_object(Bucket="harness-probe", Key="probe")["Body"].read() == b"ok"
            except (BotoCoreError, ClientError) as error:  # not ready yet
                last = f"{type(error).__name__}: {error}"
                if self.process is not None and self.process.poll() is not None:
                    raise processes.NotHealthy(f"SeaweedFS exited; its log ends with:\n"
                                               f"{processes.tail(self.log_path)}") from None
                return False

        try:
            processes.wait_for(round_trip, self.timeout, "SeaweedFS to store an object", interval=0.2)
        except TimeoutError:
            raise processes.NotHealthy(f"SeaweedFS could not store an object ({last}); its log ends with:\n"
                                       + processes.tail(self.log_path)) from None


def start(state_dir: Path, timeout: float = 60.0, host: str = "127.0.0.1") -> SeaweedFS:
    """SeaweedFS on free ports of `host` (loopback unless told) with a fresh random access key, its data in
    `state_dir`."""
    server = SeaweedFS(
        state_dir=state_dir,
        ports=Ports.free(),
        access_key=f"AKIRIS{secrets.token_hex(7).upper()}",
        secret_key=secrets.token_urlsafe(30),
        timeout=timeout,
        host=host,
    )
    return server.start()
