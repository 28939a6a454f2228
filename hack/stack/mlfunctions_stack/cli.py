"""`make up`: the whole mlfunctions stack on this machine, no cluster and no container engine needed.

    python -m mlfunctions_stack up [--gateway-port 8080] [--store-port 8081] [--console-port 8088]
                                   [--prometheus [--prometheus-port 9090]]   (or PROMETHEUS=1 make up)
                                   [--fresh]                                  (or make up FRESH=1)
    python -m mlfunctions_stack down                                          (or make down)

`up` starts a real control plane (etcd, kube-apiserver, kube-controller-manager), installs the CRDs, runs a model
store (iris-server, referenced by an external ModelStore), the operator (as its ServiceAccount, with the Helm
chart's RBAC), and the local OpenFaaS (runtime + gateway); then applies the iris examples, trains iris (once),
checks a sample prediction, starts the web console (console/, on 127.0.0.1:8088, as its own ServiceAccount) and
prints what to try. Ctrl-C (or `down` from another terminal) stops everything. State lives in .stack/: the
cluster is new on every start, while the models, the gateway's password and what the warm pools learned are kept;
--fresh removes them first. One `up` at a time per state directory; a killed one leaves nothing the next does not
clear.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import requests
from kubernetes.client.rest import ApiException
from mlfunctions_harness import controlplane, processes, prometheus

from mlfunctions_stack import run
from mlfunctions_stack.commands import REPO_ROOT, StackError

STATE_DIR = REPO_ROOT / ".stack"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlfunctions_stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the stack and keep it running until Ctrl-C")
    start.add_argument("--gateway-port", type=int, default=8080)
    start.add_argument("--store-port", type=int, default=8081)
    start.add_argument("--console-port", type=int, default=8088)
    start.add_argument("--pool-size", type=int, default=1, help="pre-warmed processes per function environment")
    start.add_argument("--state-dir", type=Path, default=STATE_DIR)
    start.add_argument("--prometheus", action="store_true", default=os.environ.get("PROMETHEUS") == "1",
                       help="also run a real Prometheus scraping the stack (or PROMETHEUS=1)")
    start.add_argument("--prometheus-port", type=int, default=9090)
    start.add_argument("--fresh", action="store_true", default=os.environ.get("FRESH") == "1",
                       help="start from scratch: remove the models, passwords and logs in the state directory "
                            "first (or FRESH=1)")
    stop = commands.add_parser("down", help="stop the `up` running with the state directory (from any terminal)")
    stop.add_argument("--state-dir", type=Path, default=STATE_DIR)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run.up(options) if options.command == "up" else run.down(options)
    except (StackError, controlplane.ControlPlaneError, processes.NotHealthy,
            prometheus.PrometheusError) as error:
        print(f"[{options.command}] failed: {error}", file=sys.stderr)
        return 1
    except (requests.RequestException, ApiException) as error:  # a component stopped answering mid-start
        print(f"[{options.command}] failed: {error}; see the logs in {options.state_dir}/ (operator.log, "
              "model-store/iris-server.log, faas/gateway.log, control-plane/logs/), or start from scratch: "
              "`make up FRESH=1`", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C or `down` while starting: what had started is stopped by now
        print(f"[{options.command}] interrupted: stopped what had started", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
