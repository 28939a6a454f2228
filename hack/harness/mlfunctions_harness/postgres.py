"""A throwaway PostgreSQL cluster (Debian's packages, provided by hack/postgres.sh) for tests and benchmarks.

    server = PostgresServer().start()
    url = server.create_database("catalog_1")   # postgresql+psycopg://postgres:<password>@127.0.0.1:<port>/...
    ...
    server.stop()

The cluster lives in a fresh temporary directory (data dir, unix socket, log) that is removed by stop(). It
listens on one address only (127.0.0.1 unless told: the node suite gives the node's), on a free port, with
password (SCRAM) authentication over TCP, as a real deployment would. PostgreSQL refuses to run as root: as
root (CI) it runs as the `postgres` system user the package creates, which owns the temporary directory. `fsync=off`: the cluster's own durability is not what the tests
are about, and it makes each commit cheap on this shared machine.

stop() is a fast shutdown (SIGINT: clients are disconnected, then a clean checkpoint), so a store that still
holds pooled connections does not keep it up; start() again brings it back on the same port and data.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import processes

REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "postgres.sh"
SUPERUSER = "postgres"
STARTUP_TIMEOUT_SECONDS = 30.0


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path:
    """Where initdb and postgres are, installing Debian's package first if needed (hack/postgres.sh)."""
    found = subprocess.run(["bash", str(INSTALL_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if found.returncode != 0:
        raise PostgresError("hack/postgres.sh could not provide PostgreSQL (see its output above)")
    return Path(found.stdout.strip())


def _as_server_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs a program as the server's user, and that user's uid/gid (None: ourselves)."""
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam("postgres")  # created by Debian's postgresql-common
    # --pdeathsig keep: a change of uid clears the parent-death signal processes.spawn sets; keep it, so the
    # cluster dies with the test process even when that is SIGKILLed.
    prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
              "--pdeathsig", "keep", "--"]
    return prefix, user.pw_uid, user.pw_gid


class PostgresServer:
    def __init__(self, port: int | None = None, bin_path: Path | None = None, host: str = "127.0.0.1",
                 client_networks: tuple[str, ...] | list[str] = ()) -> None:
        """`host`: the one address it listens on; `client_networks`: CIDRs besides loopback that may log in
        with the password (the node's pod range, for a store in a pod)."""
        self.host, self.client_networks = host, tuple(client_networks)
        self.bin = bin_path or bin_dir()
        self.port = port or processes.free_port()
        self.password = secrets.token_urlsafe(18)
        self.root = Path(tempfile.mkdtemp(prefix="mlfunctions-postgres-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None  # of the last start(), initdb included on the first
        self._prefix, uid, gid = _as_server_user()
        if uid is not None:
            os.chown(self.root, uid, gid)
        self._initialised = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """A SQLAlchemy URL for `database` (psycopg 3 driver); without the password when `password` is False."""
        secret = f":{self.password}" if password else ""
        return f"postgresql+psycopg://{SUPERUSER}{secret}@{self.address}/{database}"

    def start(self) -> PostgresServer:
        began = time.monotonic()
        if not self._initialised:
            self._initdb()
        command = [*self._prefix, str(self.bin / "postgres"), "-D", str(self.data_dir),
                   "-h", self.host, "-p", str(self.port), "-k", str(self.root),
                   "-c", "fsync=off", "-c", "max_connections=200", "-c", f"listen_addresses={self.host}"]
        self.process = processes.spawn(command, self.log_path, cwd=self.root)
        try:
            processes.wait_for(self._accepts, STARTUP_TIMEOUT_SECONDS, f"PostgreSQL on {self.address}")
        except TimeoutError:
            log = processes.tail(self.log_path)
            self.stop()
            raise PostgresError(f"PostgreSQL did not accept connections on {self.address}; its log:\n{log}") from None
        self.startup_seconds = time.monotonic() - began
        return self

    def _initdb(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if self._prefix:
            shutil.chown(password_file, "postgres", "postgres")
        done = subprocess.run(
            [*self._prefix, str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
             f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        password_file.unlink()
        if done.returncode != 0:
            raise PostgresError(f"initdb failed ({done.returncode}):\n{done.stdout[-3000:]}")
        with (self.data_dir / "pg_hba.conf").open("a") as hba:
            for network in (f"{self.host}/32", *self.client_networks):
                hba.write(f"host all all {network} scram-sha-256\n")
        self._initialised = True

    def _accepts(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise PostgresError(f"PostgreSQL exited with code {self.process.returncode}; its log:\n"
                                + processes.tail(self.log_path))
        import psycopg

        try:
            self.execute("SELECT 1")
        except psycopg.OperationalError:  # not listening yet, or "the database system is starting up"
            return False
        return True

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user=SUPERUSER, password=self.password,
                             dbname=database, autocommit=True, connect_timeout=2) as connection:
            connection.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (a fresh name unless given); returns its SQLAlchemy URL."""
        name = name or f"db_{secrets.token_hex(6)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (see the module docstring); the data stays for another start()."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            processes.stop(self.process)

    def remove(self) -> None:
        """Stop, and delete the cluster's directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
