"""An operator killed in the middle of reconciling converges after a restart: every child once, one live token
per MLFunction, nothing duplicated."""

from __future__ import annotations

import time

import pytest
from operator_cluster import FUNCTION_NAMESPACE, STORE, credential_secret, fn_name

pytestmark = pytest.mark.integration

COUNT = 40


def test_killed_mid_reconcile_converges_without_duplicates(objects, operator, namespace, iris_store):
    operator.kill()  # create everything while it is down, so the restart finds a backlog to work through
    names = [f"f{i:02d}" for i in range(COUNT)]
    for name in names:
        objects.create_mlf(namespace, name, {"task": "predict", "model": {"name": f"k-{name}"}, "modelStore": STORE})
    operator.start()

    def functions_done():
        return sum(objects.function(fn_name(namespace, n)) is not None for n in names)

    # kill it again while it is part-way through: some children exist, others not yet
    deadline = time.monotonic() + 30
    while functions_done() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    done_at_kill = functions_done()
    operator.kill()
    assert 0 < done_at_kill, "the operator made no progress before it was killed"
    operator.start()

    objects.wait(lambda: functions_done() == COUNT, timeout=60, what="every Function")
    for name in names:
        objects.wait(lambda n=name: (m := objects.mlf(namespace, n)) and
                     m.get("status", {}).get("observedGeneration") == m["metadata"]["generation"],
                     what=f"{name} status")
        secret = objects.wait(lambda n=name: objects.secret(FUNCTION_NAMESPACE, credential_secret(namespace, n)),
                              what=f"{name} credential")
        stored = secret.metadata.annotations["mlfunctions.dev/token-id"]
        # exactly one live token, the stored one: a token issued but never stored (killed in between) is revoked
        objects.wait(lambda n=name, s=stored: iris_store.live_tokens(namespace, n) == [s], timeout=20,
                     what=f"one live token for {name}")
    owned = objects.custom.list_namespaced_custom_object(
        "openfaas.com", "v1", FUNCTION_NAMESPACE, "functions",
        label_selector=f"mlfunctions.dev/owner-namespace={namespace}")["items"]
    assert sorted(f["metadata"]["name"] for f in owned) == sorted(fn_name(namespace, n) for n in names)
