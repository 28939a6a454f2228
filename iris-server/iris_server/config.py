"""Configuration from the environment (IRIS_*). See iris-server/README.md for the table."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from . import tokens
from .artifact_config import ArtifactSettings
from .database import sqlite_url, with_driver

MIN_ADMIN_TOKEN_LENGTH = 16


class ConfigError(Exception):
    pass


class DatabaseSettings(BaseSettings):
    """Where the catalog is (README "Catalog"): all that `python -m iris_server.schema_upgrade` needs."""

    model_config = SettingsConfigDict(env_prefix="IRIS_", extra="ignore")

    data_dir: Path = Path("/var/lib/iris")
    # A SQLAlchemy URL (postgresql+psycopg://user@host:5432/db); unset: the SQLite file in the data dir.
    database_url: str | None = None
    database_url_file: Path | None = None  # the URL from a mounted Secret; wins over IRIS_DATABASE_URL
    database_password_file: Path | None = None  # the password alone from a mounted Secret, put into the URL
    database_pool_size: int = Field(default=5, ge=1)  # PostgreSQL connections kept open per worker
    database_max_overflow: int = Field(default=10, ge=0)  # and opened beyond them under load

    def database_target(self) -> str:
        """The catalog's SQLAlchemy URL, with the password from IRIS_DATABASE_PASSWORD_FILE if given."""
        url = _read_secret(self.database_url_file, "IRIS_DATABASE_URL_FILE") if self.database_url_file else None
        url = url or self.database_url
        if not url:
            if self.database_password_file is not None:
                raise ConfigError("IRIS_DATABASE_PASSWORD_FILE needs IRIS_DATABASE_URL (or _FILE) to go with it")
            return sqlite_url(self.catalog_path)
        try:
            parsed = with_driver(make_url(url))  # libpq's postgresql://... on psycopg 3
        except ArgumentError as error:
            raise ConfigError(f"IRIS_DATABASE_URL is not a database URL: {error}") from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(f"IRIS_DATABASE_URL: unsupported database {parsed.get_backend_name()!r}")
        if self.database_password_file is not None:
            password = _read_secret(self.database_password_file, "IRIS_DATABASE_PASSWORD_FILE")
            parsed = parsed.set(password=password)
        return parsed.render_as_string(hide_password=False)

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"


def _read_secret(path: Path, variable: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise ConfigError(f"cannot read {variable} {path}: {error}") from error


class Settings(DatabaseSettings):
    admin_token: SecretStr | None = None
    admin_token_file: Path | None = None  # how a Kubernetes Secret is mounted; wins over IRIS_ADMIN_TOKEN
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: str = "info"
    # Retention (retention.py): older unaliased versions are pruned beyond this many per model.
    max_versions_per_model: int = Field(default=50, ge=1)
    # Inputs that cost, bounded before any work is done on them (README "Limits").
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)  # request line and headers: 431 beyond
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # to receive them: 408 after
    keepalive_timeout_seconds: float = Field(default=5.0, gt=0)  # an idle connection is closed after
    max_connections: int = Field(default=256, ge=1)  # per worker; requests on more connections: 503
    max_concurrent_requests: int = Field(default=64, ge=1)  # per worker, health checks aside: 503 beyond
    max_json_bytes: int = Field(default=64 * 1024, ge=1024)  # any body but an upload's: 413 beyond
    max_json_depth: int = Field(default=32, ge=2)  # nesting of JSON bodies and X-Model-Metadata: 400 beyond
    archive_max_members: int = Field(default=10_000, ge=1)  # skops (zip) uploads, from the central directory
    archive_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)  # their total size once inflated
    archive_max_ratio: float = Field(default=100.0, ge=1)  # inflated / compressed size of any member
    # Where artifacts live: IRIS_ARTIFACT_BACKEND, IRIS_S3_* (artifact_config.py).
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    # The change feed (GET /v1/changes): rows the change log keeps, and long-polls waiting at once per worker
    # (below max_connections, so waiting followers never take every connection from other callers).
    change_log_keep: int = Field(default=10_000, ge=100)
    max_change_waiters: int = Field(default=128, ge=1)

    @model_validator(mode="after")
    def _one_admin_token_source(self) -> Settings:
        if self.admin_token is None and self.admin_token_file is None:
            raise ValueError(
                "set IRIS_ADMIN_TOKEN or IRIS_ADMIN_TOKEN_FILE: the store refuses to run without an admin"
            )
        return self

    def admin_token_sha256(self) -> str:
        """The admin token's hash; only the hash is kept in memory after start-up."""
        if self.admin_token_file is not None:
            try:
                value = self.admin_token_file.read_text().strip()
            except OSError as error:
                raise ConfigError(
                    f"cannot read IRIS_ADMIN_TOKEN_FILE {self.admin_token_file}: {error}"
                ) from error
        else:
            assert self.admin_token is not None
            value = self.admin_token.get_secret_value().strip()
        if len(value) < MIN_ADMIN_TOKEN_LENGTH:
            raise ConfigError(f"the admin token must be at least {MIN_ADMIN_TOKEN_LENGTH} characters long")
        return tokens.digest(value)

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"
