"""python -m mlfunctions_console: the console on CONSOLE_HOST:CONSOLE_PORT (settings.py has the variables)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from . import kube
from .app import create_app
from .settings import ConfigError, from_environment


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call would drown what matters
    try:
        settings = from_environment()
        credentials = kube.from_kubeconfig(settings.kubeconfig) if settings.kubeconfig else kube.in_cluster()
    except (ConfigError, kube.KubeError) as error:
        print(f"mlfunctions-console: {error}", file=sys.stderr)
        return 2
    # One worker: training jobs and the activity history live in the process.
    uvicorn.run(
        create_app(settings, credentials),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
