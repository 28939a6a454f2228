"""python -m local_openfaas.faas_netes --namespace openfaas-fn [--kubeconfig PATH]: reconcile until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from local_openfaas.faas_netes.objects import PULL_POLICIES, DeploymentConfig
from local_openfaas.faas_netes.reconciler import Reconciler


async def serve(kubeconfig: Path | None, namespace: str, config: DeploymentConfig) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    reconciler = await Reconciler.connect(kubeconfig, namespace, config)
    await reconciler.start()
    try:
        await stopping.wait()
    finally:
        await reconciler.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_openfaas.faas_netes", description=__doc__)
    parser.add_argument("--namespace", default="openfaas-fn", help="the namespace whose Functions to run")
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="credentials to use; without it, the pod's ServiceAccount (in a cluster)")
    parser.add_argument("--image-pull-policy", choices=PULL_POLICIES, default="IfNotPresent")
    parser.add_argument("--exec-probe", action="store_true",
                        help="probe `cat /tmp/.lock` instead of GET /_/health (faas-netes with http_probe=false)")
    parser.add_argument("--set-non-root-user", action="store_true", help="run function containers as uid 12000")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = DeploymentConfig(image_pull_policy=args.image_pull_policy, http_probe=not args.exec_probe,
                              set_non_root_user=args.set_non_root_user)
    asyncio.run(serve(args.kubeconfig, args.namespace, config))


if __name__ == "__main__":
    main()
