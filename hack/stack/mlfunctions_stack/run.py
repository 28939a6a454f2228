"""The `up` and `down` commands: `make up`'s sequence over LocalStack, under the state directory's lock.

The cluster is new on every start (re-applying is a matter of seconds), while the models, the gateway's password
and what the warm pools learned are kept in the state directory; --fresh removes all of it first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import time
from contextlib import ExitStack
from pathlib import Path

from local_openfaas import funcenv
from local_openfaas.runtime.programs import stack_images
from mlfunctions_harness import controlplane

from mlfunctions_stack import instructions, run_lock
from mlfunctions_stack.commands import StackError, port_free, say
from mlfunctions_stack.sample import SampleModel
from mlfunctions_stack.up import STACK_FILE, LocalStack

EXAMPLES = instructions.EXAMPLES
# The examples `up` applies: the iris ones. modelstore.yaml deploys an iris-server Pod, which needs a kubelet;
# the nightly retrain needs the cron-connector; digits is left for the reader to apply.
TRAIN_EXAMPLES = ("namespace.yaml", "iris-train.yaml")
PREDICT_EXAMPLES = ("iris-predict.yaml", "iris-predict-scale-to-zero.yaml")
# What the console may train (their invoke credentials): the examples' train functions.
CONSOLE_TRAIN_TRIGGERS = (("data-science", "iris-train"), ("data-science", "digits-train"))


def up(options: argparse.Namespace) -> int:
    began = time.monotonic()
    state: Path = options.state_dir
    lock = run_lock.RunLock(state)
    lock.acquire()  # or StackError: another `up` runs with this state; clears what a killed one left
    # SIGTERM (`make down`) unwinds like Ctrl-C, so everything started so far is stopped in reverse order.
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _ports_free(options)  # before anything starts (or --fresh removes anything)
        if options.fresh:
            _remove_state(state)
        with ExitStack() as running:
            _start_and_wait(options, running, lock, began)
            say("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        lock.release()
    say("stopped")
    return 0


def _start_and_wait(options: argparse.Namespace, running: ExitStack, lock: run_lock.RunLock, began: float) -> None:
    state = options.state_dir

    def step(message: str) -> None:
        lock.remember()  # what has been started so far, for the next `up` should this one be killed
        say(message)

    workdir = state / "control-plane"
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh cluster every time (see the module's docstring)
    if workdir.exists():
        raise StackError(f"cannot remove {workdir} (the last cluster's etcd data and certificates): remove it "
                         "by hand, or start from scratch with `make up FRESH=1`")
    extra_lines: list[str] = []  # what optional components add to the instructions
    step("starting the control plane (etcd, kube-apiserver, kube-controller-manager)")
    cluster = controlplane.LocalControlPlane(workdir=workdir, keep_workdir=True)
    running.callback(cluster.stop)
    cluster.start()
    stack = LocalStack(cluster, state, gateway_port=options.gateway_port, store_port=options.store_port,
                       pool_size=options.pool_size)
    running.callback(stack.close)
    step("installing the CRDs")
    stack.install()
    step(f"starting the model store (iris-server) on 127.0.0.1:{options.store_port}")
    store_url, token_file = stack.start_model_store()
    step("starting the operator (with the Helm chart's RBAC)")
    stack.start_operator(stack.install_operator_rbac(store_url, token_file))
    step("preparing the functions' environments (the first time: a few minutes)")
    for folder in stack_images(STACK_FILE).values():
        funcenv.function_python(folder)  # the "image pull": built once, cached in ~/.cache/mlfunctions
    step(f"starting the local OpenFaaS gateway on 127.0.0.1:{options.gateway_port}")
    gateway = stack.start_gateway()
    if options.prometheus:
        step(f"starting Prometheus on 127.0.0.1:{options.prometheus_port}, scraping the stack")
        metrics = stack.start_prometheus(options.prometheus_port)
        extra_lines.append(f"  prometheus   {metrics.url}   (API only: {metrics.url}/api/v1/query?query=up)")

    step("applying examples/ (iris)")
    trainers = [stack.wait_ready(m) for m in stack.apply([EXAMPLES / name for name in TRAIN_EXAMPLES])]
    sample = SampleModel(stack, store_url, token_file)
    reference = sample.reference()
    if reference is not None:
        say(f"the model store holds iris v{reference.version}, trained by an earlier `up`: not training again "
            "(see below to retrain)")
    elif sample.versions():
        say("the model store holds iris versions of its own: not training (the sample check tells whether "
            "iris-predict answers)")
    else:
        step("training iris")
        reference, answer = sample.train(trainers[0])
        say(f"trained: {answer}")
    # A predict function pinned to a version the store no longer holds waits for it for ever: reported, not waited.
    predictors = [stack.wait_ready(m, settle_on=("ModelNotFound",))
                  for m in stack.apply([EXAMPLES / n for n in PREDICT_EXAMPLES])]
    deployed = [p for p in predictors if _is_ready(p)]
    warnings = [_not_deployed(p, sample.versions()) for p in predictors if not _is_ready(p)]
    if not deployed or deployed[0] is not predictors[0]:
        raise StackError(f"iris-predict has no model to serve: {_ready_message(predictors[0])}; train one (the "
                         f"iris-train function) or start from scratch: `make up FRESH=1`")
    step("checking a sample prediction")
    outcome = sample.check(deployed, reference)
    warnings += outcome.warnings
    step(f"starting the console on 127.0.0.1:{options.console_port}")
    console = stack.start_console(store_url, token_file, options.console_port, CONSOLE_TRAIN_TRIGGERS)
    lock.remember()
    print(instructions.instructions(cluster, gateway, store_url, token_file, trainers[0], deployed,
                                    time.monotonic() - began, outcome.answer.text.strip(), console, extra_lines,
                                    warnings), flush=True)
    _wait_for_ctrl_c()


def _is_ready(mlfunction: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (mlfunction.get("status") or {}).get("conditions", []))


def _ready_message(mlfunction: dict) -> str:
    ready = next((c for c in (mlfunction.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})
    return f"{ready.get('reason', '?')}: {ready.get('message', '')}"


def _ports_free(options: argparse.Namespace) -> None:
    wanted = [(options.gateway_port, "the gateway", "--gateway-port"),
              (options.store_port, "the model store", "--store-port"),
              (options.console_port, "the console", "--console-port")]
    if options.prometheus:
        wanted.append((options.prometheus_port, "Prometheus", "--prometheus-port"))
    for port, what, flag in wanted:
        port_free(port, what, flag)


def _not_deployed(predictor: dict, versions: dict[int, str]) -> str:
    """The warning for a predict function left waiting for a model version the store does not hold."""
    meta = predictor["metadata"]
    text = f"{meta['name']} is not deployed: {_ready_message(predictor)}."
    if versions:
        patch = json.dumps({"spec": {"model": {"version": max(versions)}}})
        text += (f"\n  Pin a version the store holds (it has {', '.join(f'v{v}' for v in sorted(versions))}): "
                 f"kubectl -n {meta['namespace']} patch mlf {meta['name']} --type merge -p '{patch}'")
    return text + "\n  or start from scratch: Ctrl-C, then `make up FRESH=1` (every model in .stack goes)"


def _remove_state(state: Path) -> None:
    """--fresh: everything in the state directory but the lock this `up` holds."""
    say(f"starting from scratch: removing {state} (models, passwords, logs)")
    for entry in state.iterdir():
        if entry.name == run_lock.LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def down(options: argparse.Namespace) -> int:
    say(run_lock.stop_running(options.state_dir), "down")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _wait_for_ctrl_c() -> None:
    stop = {"now": False}

    def handle(signum, frame):
        stop["now"] = True

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop["now"]:
            signal.pause()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
