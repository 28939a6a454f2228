"""`python -m mlfunctions_operator` (or `mlfunctions-operator`): run the operator, cluster-wide.

Configuration comes from MLFUNCTIONS_* environment variables (see operator/README.md); the API server from
$KUBECONFIG or the in-cluster ServiceAccount.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys

# kopf imports the Kubernetes client libraries when they are installed, only to recognise their model classes in
# what it is handed; the operator hands it dicts and talks to the API itself (kube_connection). The image does not
# install them; in a development environment that does (tests use the official client), importing them would cost
# the operator ~60 MB of memory. None in sys.modules makes their import fail, which kopf expects.
for _library in ("kubernetes", "kubernetes_asyncio", "pykube"):
    sys.modules.setdefault(_library, None)  # type: ignore[assignment]

import kopf

from . import handlers, logs
from .config import OperatorConfig
from .metrics import metrics_address


def main() -> None:
    config = OperatorConfig()  # read once, here; handed to the handlers in kopf's memo
    logs.configure(config.log_level, config.log_format)
    host, _, port = config.health_address.rpartition(":")
    # kopf, pydantic and aiohttp leave tens of thousands of long-lived objects behind at import. Freezing them keeps
    # the cyclic garbage collector from scanning them again on every full collection (stalling every reconcile).
    gc.collect()
    gc.freeze()
    # /metrics on the health address (the default) serves /healthz too, in place of kopf's liveness server.
    shared = metrics_address(config.health_address) == config.health_address
    asyncio.run(kopf.operator(
        registry=handlers.registry(),
        memo=kopf.Memo(config=config),
        clusterwide=True,
        standalone=True,
        liveness_endpoint=None if shared else f"http://{host or '0.0.0.0'}:{port}/healthz",
        identity=identity(),
    ))


def identity() -> str:
    """Who this operator is, for kopf. kopf's own default names the OS user, looked up by uid in /etc/passwd: a
    pod that runs as a uid without an entry there (the chart runs as 65532 on a read-only root) would exit with
    KeyError before doing anything. kopf's documented $POD_ID wins; else the host name, which is the pod's name."""
    return os.environ.get("POD_ID") or f"mlfunctions-operator@{socket.gethostname()}/{os.getpid()}"


if __name__ == "__main__":
    main()
