"""`python -m iris_server`: recover the data dir, then serve with uvicorn (configured by IRIS_* variables)."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from .catalog import Catalog
from .config import ConfigError, Settings
from .observability import configure_logging
from .recovery import recover
from .storage import FilesystemBackend

log = logging.getLogger("iris_server")


def main() -> int:
    try:
        settings = Settings()
        settings.admin_token_sha256()  # fail now, with a clear message, rather than in every worker
    except (ValidationError, ConfigError) as error:
        print(f"iris-server: invalid configuration: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Before any worker starts, so no upload can be in flight while orphans are swept.
    recover(Catalog(settings.catalog_path), FilesystemBackend(settings.blobs_dir), settings.staging_dir)
    log.info(
        "starting",
        extra={
            "host": settings.host,
            "port": settings.port,
            "workers": settings.workers,
            "data_dir": str(settings.data_dir),
            "max_upload_bytes": settings.max_upload_bytes,
        },
    )
    uvicorn.run(
        "iris_server.api:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,  # keep our JSON logging
        access_log=False,  # ObservabilityMiddleware writes the access log, without secrets
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
