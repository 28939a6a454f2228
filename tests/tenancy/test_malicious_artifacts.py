"""Uploads built to hurt: ONNX models pointing at files on the server, zip bombs dressed as skops files.

Each is refused with a JSON message (422) and leaves nothing: no version, no blob on the volume, nothing
staged. The same models with their data inline are accepted (so the refusal is for the external data, not for
something else wrong with them), and the bombs are refused from the zip's directory: the store's memory does
not grow by what they would inflate to.
"""

from __future__ import annotations

import pytest
import requests

from iris_client import NotFound
from tenancy_payloads import (
    EXTERNAL_DATA_PLACES,
    STOLEN_PATH,
    large_stored,
    many_members,
    onnx_bytes,
    schema_bomb,
    skops_estimator,
)

pytestmark = pytest.mark.server

BOMB_INFLATED = 512 << 20


def _upload(store, model: str, data: bytes, fmt: str) -> requests.Response:
    return requests.post(
        f"{store.url}/v1/models/{model}/versions",
        params={"format": fmt},
        data=data,
        headers={"Authorization": f"Bearer {store.admin_token}", "Content-Type": "application/octet-stream"},
        timeout=60,
    )


def _assert_left_nothing(store, model: str) -> None:
    with pytest.raises(NotFound):
        store.admin.list_versions(model)
    assert store.blobs(model) == [] and store.staged() == []


@pytest.mark.parametrize("place", list(EXTERNAL_DATA_PLACES))
def test_onnx_pointing_at_external_data_is_refused_wherever_the_tensor_hides(store, place):
    model = f"ext-{place}"
    refused = _upload(store, model, onnx_bytes(EXTERNAL_DATA_PLACES[place], external=True), "onnx")
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["error"] == "invalid_artifact" and "external data" in body["message"]
    assert STOLEN_PATH not in body["message"]  # the answer says where the tensor is, not what it points at
    _assert_left_nothing(store, model)

    inline = _upload(store, model, onnx_bytes(EXTERNAL_DATA_PLACES[place], external=False), "onnx")
    assert inline.status_code == 201, inline.text


def test_a_schema_bomb_is_refused_before_it_is_inflated(store):
    bomb = schema_bomb(BOMB_INFLATED)
    assert len(bomb) < BOMB_INFLATED // 100  # it is one: it would inflate more than 100 times
    before = store.rss_bytes()
    refused = _upload(store, "bomb", bomb, "skops")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "unsafe_archive" and "inflates" in refused.json()["message"]
    # Inflating the schema would have cost at least its 512 MiB; a few MiB is the request itself.
    assert store.rss_bytes() - before < 64 << 20
    _assert_left_nothing(store, "bomb")


def test_an_archive_of_too_many_members_is_refused(store_with):
    store = store_with(archive_max_members=50)
    refused = _upload(store, "members", many_members(60), "skops")
    assert refused.status_code == 422 and refused.json()["error"] == "unsafe_archive"
    assert "61 members" in refused.json()["message"]
    _assert_left_nothing(store, "members")
    assert _upload(store, "members", skops_estimator(), "skops").status_code == 201


def test_an_archive_inflating_past_the_budget_is_refused_even_uncompressed(store_with):
    store = store_with(archive_max_bytes=1 << 20)
    refused = _upload(store, "stored", large_stored(2 << 20), "skops")
    assert refused.status_code == 422 and refused.json()["error"] == "unsafe_archive"
    assert str(1 << 20) in refused.json()["message"]
    _assert_left_nothing(store, "stored")
    assert _upload(store, "stored", skops_estimator(), "skops").status_code == 201
