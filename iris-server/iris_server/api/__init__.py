"""The HTTP API: thin handlers over the catalog, the artifact backend and the upload pipeline, one module per
resource (models, versions, aliases, tokens, health), assembled by `app.create_app`.

Reads are `async def` and query SQLite inline: an indexed read in WAL mode takes microseconds and never waits
for writers, far less than a hop to the threadpool (measured: ~0.3 ms of CPU per request on this class of
machine). Writes commit with fsync, so they are plain `def` (FastAPI runs them in its threadpool) or use
to_thread.
"""

from .app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
