"""The local OpenFaaS: runtime + gateway in one process.

    python -m local_openfaas.gateway --port 8080 --stack-file functions/stack.yml --state-dir .stack/faas \\
        [--kubeconfig PATH]   # follow Function resources (openfaas.com/v1) and write their status
                              # without it, functions are deployed through /system/functions only
        [--backend pods]      # with --kubeconfig: replicas are pods of faas-netes-shaped Deployments in
                              # --namespace on a real node (default: local processes)
        [--no-cron]           # no cron-connector (also LOCAL_OPENFAAS_CRON=0)
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web
from pythonjsonlogger.json import JsonFormatter

from local_openfaas.cron.clock import clock_for
from local_openfaas.cron.connector import CronConnector, Recorder
from local_openfaas.cron.metrics import CronCollector
from local_openfaas.gateway import auth
from local_openfaas.gateway.app import Gateway
from local_openfaas.gateway.async_calls import LOOPBACK
from local_openfaas.gateway.http_limits import GuardedAppRunner, RequestLimits
from local_openfaas.runtime.backend import ProcessBackend
from local_openfaas.runtime.programs import ChainedPrograms, StackPrograms, StaticPrograms
from local_openfaas.runtime.provider import LocalProvider
from local_openfaas.runtime.runtime import FunctionRuntime
from local_openfaas.runtime.secret_store import LocalSecrets
from local_openfaas.runtime.spec import DEFAULT_NAMESPACE

log = logging.getLogger("mlfunctions.gateway")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_openfaas.gateway", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--state-dir", type=Path, required=True,
                        help="logs, credentials, what the warm pools learned (kept across restarts)")
    parser.add_argument("--stack-file", type=Path, action="append", default=[],
                        help="an OpenFaaS stack.yml: its images run from its function folders")
    parser.add_argument("--programs", type=Path, action="append", default=[],
                        help="a YAML file mapping more images to local programs")
    parser.add_argument("--kubeconfig", type=Path, help="follow Function resources of this cluster")
    parser.add_argument("--backend", choices=("processes", "pods"), default="processes",
                        help="what replicas are: local processes, or pods of Deployments in --namespace (needs "
                             "--kubeconfig, and a node to run them)")
    parser.add_argument("--pod-pool-size", type=int, default=0, metavar="N",
                        help="with --backend pods: N pool pods per image of the functions that scale to zero, "
                             "specialized on a cold start (0: no pool)")
    parser.add_argument("--watch-namespace", default="", help="only this namespace's Functions (default: all)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="the gateway's default function namespace")
    parser.add_argument("--auth-dir", type=Path, help="basic-auth-user/basic-auth-password (default: "
                                                      "<state-dir>/auth, created with a random password)")
    parser.add_argument("--no-auth", action="store_true", help="leave /system open (never on a shared machine)")
    parser.add_argument("--pool-size", type=int, default=1,
                        help="pre-warmed processes per environment (an image's virtualenv), shared by its functions")
    parser.add_argument("--autoscale-interval", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument("--ready-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="how long a request waits for a replica when scaling from zero")
    parser.add_argument("--upstream-timeout", type=float, default=300.0, metavar="SECONDS")
    parser.add_argument("--async-queue-size", type=int, default=256,
                        help="asynchronous calls waiting at most; more are answered 429")
    parser.add_argument("--async-workers", type=int, default=4, help="asynchronous calls running at once")
    parser.add_argument("--async-callback-network", type=ipaddress.ip_network, action="append", default=[],
                        metavar="CIDR", help="a network X-Callback-Url may reach, besides loopback (repeatable): "
                                             "each callback is a request made on the caller's behalf")
    parser.add_argument("--async-callback-timeout", type=float, default=30.0, metavar="SECONDS")
    limits = RequestLimits()
    parser.add_argument("--max-header-bytes", type=int, default=limits.max_header_bytes, metavar="BYTES",
                        help="request line and headers larger are answered 431")
    parser.add_argument("--max-header-line-bytes", type=int, default=limits.max_line_bytes, metavar="BYTES",
                        help="a request line or header line longer is answered 431")
    parser.add_argument("--header-timeout", type=float, default=limits.header_timeout, metavar="SECONDS",
                        help="request line and headers not in this long after their first byte: 408, closed")
    parser.add_argument("--max-concurrent-requests", type=int, default=limits.max_concurrent,
                        help="requests in flight beyond it are answered 503 with Retry-After (/healthz exempt)")
    parser.add_argument("--no-cron", dest="cron", action="store_false",
                        default=os.environ.get("LOCAL_OPENFAAS_CRON", "1") not in ("0", "false", "no"),
                        help="do not run the cron-connector (functions annotated topic: cron-function are then "
                             "not invoked on their schedule); LOCAL_OPENFAAS_CRON=0 does the same")
    parser.add_argument("--cron-clock-rate", type=float, default=1.0, metavar="RATE",
                        help="for tests: the cron-connector's clock runs RATE times faster than the system's "
                             "(60: a minute a second), starting from now")
    return parser.parse_args(argv)


def cron_connector(options: argparse.Namespace, runtime: FunctionRuntime, kube) -> CronConnector:
    """The cron-connector, invoking through this gateway as OpenFaaS's does through its gateway."""
    host = "127.0.0.1" if options.host in ("", "0.0.0.0", "::") else options.host
    recorder = Recorder()
    if kube:
        from local_openfaas.cron.kube_record import FunctionAnnotations

        recorder = FunctionAnnotations(kube)
    return CronConnector(lambda: [deployed.spec for deployed in list(runtime.functions.values())],
                         f"http://{host}:{options.port}", clock=clock_for(options.cron_clock_rate),
                         recorder=recorder, timeout=options.upstream_timeout + 5)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def serve(options: argparse.Namespace) -> None:
    resolvers = [StaticPrograms(p) for p in options.programs] + [StackPrograms(p) for p in options.stack_file]
    credentials = None if options.no_auth else (
        auth.load(options.auth_dir) if options.auth_dir else auth.ensure(options.state_dir / "auth"))
    log_dir = options.state_dir / "logs"

    kube = None
    pods = options.backend == "pods"
    if pods and not options.kubeconfig:
        raise SystemExit("--backend pods needs --kubeconfig: pods run on a cluster's node")
    if options.kubeconfig:  # the Kubernetes client is imported only when there is a cluster to follow
        from local_openfaas.runtime.kube import KubeBinding
        from local_openfaas.runtime.kube_provider import KubeProvider
        from local_openfaas.runtime.kube_secrets import KubeSecrets

        # On pods the reconciler writes the Functions' status (from their Deployments), in one namespace.
        watched = options.namespace if pods else (options.watch_namespace or None)
        kube = await KubeBinding.connect(options.kubeconfig, watched, writes_status=not pods)
    # Standalone, /system/secrets keeps secrets under the state dir and replicas read them from there.
    local_secrets = None if kube else LocalSecrets(options.state_dir / "secrets")
    hooks = kube.runtime_hooks() if kube else {"secrets": local_secrets.read_for}
    secrets = hooks.pop("secrets")
    if pods:
        from local_openfaas.pods.backend import PodBackend

        backend = await PodBackend.start(options.kubeconfig, options.namespace, pool_size=options.pod_pool_size)
    else:
        backend = ProcessBackend(ChainedPrograms(*resolvers), log_dir=log_dir, pool_dir=options.state_dir / "pool",
                                 secrets=secrets, pool_size=options.pool_size)
    runtime = FunctionRuntime(backend, autoscale_interval=options.autoscale_interval,
                              ready_timeout=options.ready_timeout, **hooks)
    await runtime.start()
    provider = KubeProvider(kube, runtime) if kube else LocalProvider(runtime)
    async_options = {"queue_size": options.async_queue_size, "workers": options.async_workers,
                     "callback_networks": (*LOOPBACK, *options.async_callback_network),
                     "callback_timeout": options.async_callback_timeout}
    gateway = Gateway(runtime, provider, credentials, options.namespace, options.upstream_timeout,
                      ready=kube.synced if kube else (lambda: True),
                      secrets=KubeSecrets(kube.core) if kube else local_secrets, log_dir=log_dir,
                      orchestration="kubernetes" if kube else "local-processes", async_options=async_options)
    limits = RequestLimits(options.max_header_bytes, options.max_header_line_bytes, options.header_timeout,
                           options.max_concurrent_requests)
    runner = GuardedAppRunner(gateway.app(), limits=limits, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, options.host, options.port, backlog=1024).start()
    if kube:
        await kube.start(runtime)
    cron = cron_connector(options, runtime, kube) if options.cron else None
    if cron:
        gateway.register_collector(CronCollector(cron))
        await cron.start()
    log.info("gateway listening", extra={"url": f"http://{options.host}:{options.port}",
                                         "kubernetes": bool(kube), "backend": options.backend,
                                         "poolSize": options.pool_size,
                                         "cron": bool(cron)})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    if cron:
        await cron.close()
    if kube:
        await kube.stop()
    await runner.cleanup()
    await runtime.close()


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    configure_logging()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(options))


if __name__ == "__main__":
    main()
