"""Filesystem backend and start-up recovery, on real files."""

from __future__ import annotations

import hashlib

import pytest
from iris_server.catalog import Catalog
from iris_server.records import NewVersion
from iris_server.recovery import recover, sweep
from iris_server.storage import BackendUnavailable, FilesystemBackend, Stager, TooLarge


def _stage(tmp_path, data: bytes, limit: int = 1 << 20):
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    stager = Stager(staging, limit)
    for start in range(0, len(data), 7):
        stager.write(data[start : start + 7])
    return stager.finish()


def test_staging_hashes_and_commit_moves_the_file(tmp_path):
    data = b"0123456789" * 10
    staged = _stage(tmp_path, data)
    assert staged.size == 100 and staged.sha256 == hashlib.sha256(data).hexdigest()
    backend = FilesystemBackend(tmp_path / "artifacts")
    key = backend.commit(staged, "iris", "onnx")
    assert not staged.path.exists()
    with backend.open(key) as stream:
        assert stream.read() == data
    assert list(backend.keys()) == [key]
    backend.delete(key)
    backend.delete(key)
    assert list(backend.keys()) == []


def test_oversized_upload_leaves_nothing_staged(tmp_path):
    with pytest.raises(TooLarge):
        _stage(tmp_path, b"x" * 100, limit=50)
    assert list((tmp_path / "staging").iterdir()) == []


def test_recovery_removes_partial_and_unreferenced_files_only(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    backend = FilesystemBackend(tmp_path / "artifacts")
    kept = backend.commit(_stage(tmp_path, b"kept"), "iris", "onnx")
    catalog.add_version(NewVersion("iris", "onnx", "0" * 64, 4, "t", {}, kept))
    orphan = backend.commit(_stage(tmp_path, b"committed blob, crash before its row"), "iris", "onnx")
    Stager(tmp_path / "staging", 100).write(b"half an upload")

    report = recover(catalog, backend, tmp_path / "staging")

    assert (report.staged_removed, report.orphans_removed, report.missing_blobs) == (1, 1, [])
    assert set(backend.keys()) == {kept}
    assert orphan != kept and list((tmp_path / "staging").iterdir()) == []


def test_recovery_reports_but_keeps_versions_whose_blob_vanished(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    backend = FilesystemBackend(tmp_path / "artifacts")
    key = backend.commit(_stage(tmp_path, b"bytes"), "iris", "onnx")
    catalog.add_version(NewVersion("iris", "onnx", "0" * 64, 5, "t", {}, key))
    (tmp_path / "artifacts" / key).unlink()
    report = recover(catalog, backend, tmp_path / "staging")
    assert report.missing_blobs == ["iris v1"]
    assert len(catalog.list_versions("iris")) == 1


def test_sweep_leaves_unreferenced_blobs_younger_than_the_grace_period(tmp_path):
    """What keeps a periodic sweep off an upload whose catalog row is about to be written."""
    catalog = Catalog(tmp_path / "catalog.sqlite3")
    backend = FilesystemBackend(tmp_path / "artifacts")
    young = backend.commit(_stage(tmp_path, b"uploaded a moment ago"), "iris", "onnx")
    assert sweep(catalog, backend, grace_seconds=3600).orphans_removed == 0
    assert list(backend.keys()) == [young]
    assert sweep(catalog, backend, grace_seconds=0).orphans_removed == 1
    assert list(backend.keys()) == []


def test_filesystem_backend_is_unavailable_without_its_directory(tmp_path):
    backend = FilesystemBackend(tmp_path / "artifacts")
    backend.ping()
    (tmp_path / "artifacts").rmdir()
    with pytest.raises(BackendUnavailable, match=r"the artifact store \(filesystem at .*\) is unavailable"):
        backend.ping()
