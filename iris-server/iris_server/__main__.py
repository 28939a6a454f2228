"""`python -m iris_server`: recover the data dir, then serve with uvicorn (configured by IRIS_* variables)."""

from __future__ import annotations

import logging
import sys
from functools import partial

import uvicorn
from pydantic import ValidationError

from .artifact_config import ArtifactConfigError
from .catalog import Catalog
from .config import ConfigError, Settings
from .database import UNAVAILABLE, Database
from .http_protocol import ConnectionLimits, GuardedH11Protocol
from .observability import configure_logging
from .recovery import recover
from .schema_upgrade import SchemaTooNew
from .storage import BackendUnavailable

log = logging.getLogger("iris_server")


def main() -> int:
    try:
        settings = Settings()
        settings.admin_token_sha256()  # fail now, with a clear message, rather than in every worker
        settings.database_target()
    except (ValidationError, ConfigError) as error:
        print(f"iris-server: invalid configuration: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        backend = settings.artifacts.open_backend(settings.blobs_dir)
    except ArtifactConfigError as error:
        print(f"iris-server: invalid configuration: {error}", file=sys.stderr)
        return 2
    try:
        catalog = Catalog(settings.database_target(), pool_size=1, max_overflow=0)  # migrates the schema
    except SchemaTooNew as error:
        print(f"iris-server: {error}", file=sys.stderr)
        return 2
    except UNAVAILABLE as error:
        # Nothing may be served before the schema is known to be current: exit non-zero, and the kubelet's
        # restart (with its back-off) tries again; a database lost later is survived without a restart.
        database = Database(settings.database_target())
        print(f"iris-server: cannot start: {database.unavailable_message(error)}", file=sys.stderr)
        return 3
    # Before any worker starts, so no upload of this process can be in flight while orphans are swept (other
    # replicas' uploads are protected by the grace period, see recovery.py).
    try:
        recover(
            catalog,
            backend,
            settings.staging_dir,
            settings.artifacts.startup_grace_seconds,
        )
    except BackendUnavailable as error:
        # Serve anyway: /readyz reports the store, requests that need it get 503, and the periodic sweep
        # catches up once it is back.
        log.error("start-up sweep skipped", extra={"reason": str(error)})
    log.info(
        "starting",
        extra={
            "host": settings.host,
            "port": settings.port,
            "workers": settings.workers,
            "data_dir": str(settings.data_dir),
            "artifact_store": backend.name,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_versions_per_model": settings.max_versions_per_model,
        },
    )
    limits = ConnectionLimits(
        settings.max_header_bytes, settings.header_timeout_seconds, settings.max_connections
    )
    uvicorn.run(
        "iris_server.api:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http=partial(GuardedH11Protocol, limits=limits),  # header size and time bounds: http_protocol.py
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=settings.keepalive_timeout_seconds,
        log_config=None,  # keep our JSON logging
        access_log=False,  # ObservabilityMiddleware writes the access log, without secrets
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
