"""Artifacts in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS, ...), through boto3.

A version's bytes are first staged and verified on local disk (storage.Stager hashes them as they arrive, the
upload pipeline validates them), then uploaded here under a fresh random key `<prefix><model>/<uuid>.<format>`
that nothing references until the catalog row is written: the catalog is what makes a version visible, so the
key is a staging key until then. The upload carries the SHA-256 for the server to check: a single PUT sends the
staged file's own digest (the object is created only if the bytes that arrived hash to it); a multipart upload
(boto3's transfer manager, above IRIS_S3_MULTIPART_THRESHOLD_BYTES) sends each part's SHA-256, and the object
exists only once CompleteMultipartUpload succeeds. The stored size is checked afterwards.

A crash leaves at worst an unreferenced object or an unfinished multipart upload; recovery.sweep deletes both
once they are older than the grace period. Only keys of exactly that shape under the prefix are ever listed as
the store's, so a bucket shared with other data is safe from the sweep.

Every failure to reach or use the store becomes storage.BackendUnavailable (503 naming the endpoint); boto3
retries each call a few times first (standard mode). Readiness uses a separate client that answers quickly.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .storage import BackendUnavailable, StagedArtifact

# <model>/<32 hex>.<format>: what commit() writes; nothing else under the prefix is the store's.
_OWN_KEY = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?/[0-9a-f]{32}\.[a-z0-9]+")
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None
    bucket: str
    prefix: str  # "" or ending in "/"
    region: str
    addressing_style: str  # path, virtual or auto
    access_key_id: str | None
    secret_access_key: str | None
    ca_bundle: Path | None
    multipart_threshold: int
    part_size: int
    connect_timeout: float
    read_timeout: float


class S3Backend:
    def __init__(self, options: S3Options) -> None:
        self.options = options
        where = options.endpoint_url or f"AWS {options.region}"
        self.name = f"S3 at {where}, bucket {options.bucket}"
        session = boto3.session.Session(
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            region_name=options.region,
        )
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": options.addressing_style},
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,  # the threads uploads and downloads run in share one client
        )
        # Readiness probes must answer within the kubelet's timeout even when the endpoint black-holes.
        probe = config.merge(Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))
        verify = str(options.ca_bundle) if options.ca_bundle else None
        self._client = session.client("s3", endpoint_url=options.endpoint_url, config=config, verify=verify)
        self._probe = session.client("s3", endpoint_url=options.endpoint_url, config=probe, verify=verify)
        self._transfer = TransferConfig(
            multipart_threshold=options.multipart_threshold,
            multipart_chunksize=options.part_size,
            max_concurrency=4,
            preferred_transfer_client="classic",
        )

    def commit(self, staged: StagedArtifact, model: str, fmt: str) -> str:
        key = f"{model}/{uuid.uuid4().hex}.{fmt}"
        target = self.options.prefix + key
        extra = {"ContentType": "application/octet-stream", "Metadata": {"sha256": staged.sha256}}
        with self._errors():
            if staged.size < self.options.multipart_threshold:
                with staged.path.open("rb") as body:
                    self._client.put_object(
                        Bucket=self.options.bucket,
                        Key=target,
                        Body=body,
                        ChecksumSHA256=base64.b64encode(bytes.fromhex(staged.sha256)).decode(),
                        **extra,
                    )
            else:
                self._client.upload_file(
                    str(staged.path),
                    self.options.bucket,
                    target,
                    ExtraArgs={**extra, "ChecksumAlgorithm": "SHA256"},
                    Config=self._transfer,
                )
            stored = self._client.head_object(Bucket=self.options.bucket, Key=target)
        if stored["ContentLength"] != staged.size:
            self.delete(key)
            raise BackendUnavailable(
                self.name, f"stored {stored['ContentLength']} bytes for {key}, {staged.size} were uploaded"
            )
        staged.discard()
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            answer = self._client.get_object(Bucket=self.options.bucket, Key=self.options.prefix + key)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise FileNotFoundError(key) from error
            raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error
        return answer["Body"]  # a StreamingBody: read(n) streams from the connection; closing releases it

    def delete(self, key: str) -> None:
        with self._errors():  # deleting a missing key succeeds in S3
            self._client.delete_object(Bucket=self.options.bucket, Key=self.options.prefix + key)

    def entries(self) -> Iterator[tuple[str, datetime]]:
        prefix = self.options.prefix
        with self._errors():
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.options.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(prefix) :]
                    if _OWN_KEY.fullmatch(key):
                        yield key, item["LastModified"]

    def abort_incomplete(self, older_than: datetime) -> int:
        prefix, aborted = self.options.prefix, 0
        with self._errors():
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.options.bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if _OWN_KEY.fullmatch(upload["Key"][len(prefix) :]) and upload["Initiated"] <= older_than:
                        self._client.abort_multipart_upload(
                            Bucket=self.options.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted

    def ping(self) -> None:
        try:
            self._probe.head_bucket(Bucket=self.options.bucket)
        except (BotoCoreError, ClientError) as error:
            raise self._unavailable(error) from error

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError, Boto3Error) as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> BackendUnavailable:
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = error.response.get("Error", {}).get("Message") or ""
            return BackendUnavailable(self.name, f"{_code(error)} (HTTP {status}) {message}".strip())
        return BackendUnavailable(self.name, str(error) or type(error).__name__)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
