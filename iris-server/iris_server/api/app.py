"""The FastAPI app: one Store (catalog, artifact backend, upload pipeline) and the resource routers."""

from __future__ import annotations

from fastapi import FastAPI

from .. import __version__, change_feed
from ..archives import ArchiveLimits
from ..catalog import Catalog
from ..config import Settings
from ..errors import install_handlers
from ..observability import ObservabilityMiddleware
from ..ownership import Ownership
from ..recovery import sweeping
from ..request_limits import BodyLimit, ConcurrencyLimit
from ..uploads import UploadPipeline
from . import aliases, changes, health, models, ownership, token_admin, versions
from .params import Store


def create_app(settings: Settings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(
        settings.database_target(),
        change_log_keep=settings.change_log_keep,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    catalog.on_change.append(change_feed.SIGNAL.notify)
    backend = settings.artifacts.open_backend(settings.blobs_dir)
    app = FastAPI(
        title="iris-server",
        version=__version__,
        description="The mlfunctions model store: versioned models of any kind behind scoped bearer tokens.",
        lifespan=sweeping(
            catalog,
            backend,
            settings.artifacts.orphan_grace_seconds,
            settings.artifacts.sweep_interval_seconds,
        ),
    )
    app.state.store = Store(
        settings=settings,
        catalog=catalog,
        backend=backend,
        admin_sha256=settings.admin_token_sha256(),
        uploads=UploadPipeline(
            catalog,
            backend,
            settings.staging_dir,
            settings.max_upload_bytes,
            max_versions=settings.max_versions_per_model,
            archive_limits=ArchiveLimits(
                settings.archive_max_members, settings.archive_max_bytes, settings.archive_max_ratio
            ),
        ),
        ownership=Ownership(catalog),
    )
    install_handlers(app)
    for module in (health, models, versions, aliases, changes, ownership, token_admin):
        app.include_router(module.router)
    # The last added runs first: observe everything, then refuse what is over the limits, then the app.
    app.add_middleware(BodyLimit, max_bytes=settings.max_json_bytes, max_depth=settings.max_json_depth)
    app.add_middleware(ConcurrencyLimit, limit=settings.max_concurrent_requests)
    app.add_middleware(ObservabilityMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn factory: each worker process builds its app from the same IRIS_* environment."""
    return create_app(Settings())
