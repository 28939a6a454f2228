"""The train function's own modules, imported the way its image runs them: from its folder, as top-level modules
(functions/train/estimators.py is `estimators`). Shared by the contract tests that compare them with the operator."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

TRAIN_DIR = Path(__file__).resolve().parents[2] / "functions" / "train"


def module(name: str):
    if str(TRAIN_DIR) not in sys.path:
        sys.path.insert(0, str(TRAIN_DIR))
    loaded = importlib.import_module(name)
    assert Path(loaded.__file__).parent == TRAIN_DIR, f"{name} was imported from {loaded.__file__}, not {TRAIN_DIR}"
    return loaded
