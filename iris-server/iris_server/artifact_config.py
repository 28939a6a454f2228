"""Where artifacts are stored, from the environment: the filesystem (default) or an S3-compatible object store.
See iris-server/README.md, "Artifact storage", for the table.

Credentials come from files where a Kubernetes Secret is mounted (IRIS_S3_ACCESS_KEY_ID_FILE and
IRIS_S3_SECRET_ACCESS_KEY_FILE, which win over the plain variables), from IRIS_S3_ACCESS_KEY_ID /
IRIS_S3_SECRET_ACCESS_KEY, or, with none of these, from boto3's own chain (AWS_* variables, a web identity
token, an instance profile). They are read once at start: restart after rotating them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .storage import ArtifactBackend, FilesystemBackend

MIB = 1024 * 1024
_S3_MIN_PART = 5 * MIB  # S3's smallest part but the last


class ArtifactConfigError(Exception):
    pass


class ArtifactSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IRIS_", extra="ignore")

    artifact_backend: Literal["filesystem", "s3"] = "filesystem"
    # Unreferenced blobs younger than this are left alone by the sweep (another replica may be about to record
    # one); the sweep runs at start-up and then every interval (recovery.py).
    orphan_grace_seconds: float = Field(default=3600.0, ge=0)
    sweep_interval_seconds: float = Field(default=600.0, gt=0)

    s3_endpoint_url: str | None = None  # None: AWS itself, for s3_region
    s3_bucket: str | None = None
    s3_prefix: str = ""  # keys are <prefix><model>/<uuid>.<format>: several stores can share a bucket
    s3_region: str = "us-east-1"
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    s3_access_key_id: SecretStr | None = None
    s3_access_key_id_file: Path | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_secret_access_key_file: Path | None = None
    s3_ca_bundle: Path | None = None  # PEM file of the CA that signed an https endpoint's certificate
    s3_multipart_threshold_bytes: int = Field(default=16 * MIB, ge=_S3_MIN_PART)
    s3_multipart_part_bytes: int = Field(default=8 * MIB, ge=_S3_MIN_PART)
    s3_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    s3_read_timeout_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> ArtifactSettings:
        if self.artifact_backend == "s3" and not self.s3_bucket:
            raise ValueError("IRIS_ARTIFACT_BACKEND=s3 needs IRIS_S3_BUCKET")
        if self.s3_endpoint_url and not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise ValueError(
                f"IRIS_S3_ENDPOINT_URL must be an http:// or https:// URL; got {self.s3_endpoint_url!r}"
            )
        return self

    def open_backend(self, blobs_dir: Path) -> ArtifactBackend:
        """The configured backend; raises ArtifactConfigError when its credentials cannot be read."""
        if self.artifact_backend == "filesystem":
            return FilesystemBackend(blobs_dir)
        from .s3_storage import S3Backend, S3Options  # boto3 is imported only when it is used

        key_id = _secret("IRIS_S3_ACCESS_KEY_ID", self.s3_access_key_id, self.s3_access_key_id_file)
        secret = _secret(
            "IRIS_S3_SECRET_ACCESS_KEY", self.s3_secret_access_key, self.s3_secret_access_key_file
        )
        if (key_id is None) != (secret is None):
            raise ArtifactConfigError("set both the S3 access key id and the secret access key, or neither")
        assert self.s3_bucket is not None
        prefix = self.s3_prefix.strip("/")
        return S3Backend(
            S3Options(
                endpoint_url=self.s3_endpoint_url,
                bucket=self.s3_bucket,
                prefix=f"{prefix}/" if prefix else "",
                region=self.s3_region,
                addressing_style=self.s3_addressing_style,
                access_key_id=key_id,
                secret_access_key=secret,
                ca_bundle=self.s3_ca_bundle,
                multipart_threshold=self.s3_multipart_threshold_bytes,
                part_size=self.s3_multipart_part_bytes,
                connect_timeout=self.s3_connect_timeout_seconds,
                read_timeout=self.s3_read_timeout_seconds,
            )
        )

    @property
    def startup_grace_seconds(self) -> float:
        """The filesystem belongs to this process tree alone: nothing is in flight before workers start. An
        object store is shared with other replicas, which may be uploading right now."""
        return 0.0 if self.artifact_backend == "filesystem" else self.orphan_grace_seconds


def _secret(variable: str, value: SecretStr | None, path: Path | None) -> str | None:
    if path is not None:
        try:
            text = path.read_text().strip()
        except OSError as error:
            raise ArtifactConfigError(f"cannot read {variable}_FILE {path}: {error}") from error
        if not text:
            raise ArtifactConfigError(f"{variable}_FILE {path} is empty")
        return text
    return value.get_secret_value().strip() if value is not None else None
