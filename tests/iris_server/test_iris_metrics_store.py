"""iris_models and iris_stored_bytes on the store's /metrics, over real HTTP: they follow uploads and deletes,
and a restart on the same data dir reports what is on disk (they are read from the catalog, not kept in memory)."""

from __future__ import annotations

import requests
from iris_samples import onnx_model
from prometheus_client.parser import text_string_to_metric_families


def stored(server) -> tuple[float, float]:
    response = requests.get(f"{server.url}/metrics", timeout=10)
    response.raise_for_status()
    values = {s.name: s.value for f in text_string_to_metric_families(response.text) for s in f.samples}
    return values["iris_models"], values["iris_stored_bytes"]


def test_models_and_bytes_follow_uploads_deletes_and_restarts(iris_factory):
    server = iris_factory().start()
    assert stored(server) == (0, 0)
    admin = server.admin
    first, second = onnx_model(seed=1), onnx_model(seed=2)
    a1 = admin.upload("alpha", first)
    assert stored(server) == (1, len(first))
    a2 = admin.upload("alpha", second)
    b1 = admin.upload("beta", first)
    assert stored(server) == (2, 2 * len(first) + len(second))
    assert a1.size + a2.size + b1.size == 2 * len(first) + len(second)

    admin.delete_version("alpha", 1)
    assert stored(server) == (2, len(first) + len(second))
    admin.delete_version("beta", 1)  # a model with no version left stores nothing
    assert stored(server) == (1, len(second))

    server.stop()
    server.start()
    assert stored(server) == (1, len(second))
