"""Fixtures and helpers for the operator's tests: golden manifests (unit) and a running operator (integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def golden():
    """golden(name, documents): compare manifests with tests/operator/golden/<name>.yaml.

    UPDATE_GOLDEN=1 rewrites the file instead (review the diff before committing it).
    """

    def check(name: str, documents: list[dict]) -> None:
        path = GOLDEN / f"{name}.yaml"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(yaml.safe_dump_all(documents, sort_keys=True, width=120))
        assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 and review it"
        expected = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents == expected, f"manifests differ from {path} (UPDATE_GOLDEN=1 rewrites it)"

    return check
