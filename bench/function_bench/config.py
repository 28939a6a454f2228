"""What the benchmark measures and where it writes."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "bench" / "bench_functions.py"  # run again in the train venv for the baseline's parts
RESULTS = REPO / "bench" / "results" / "functions.json"
ADMIN_TOKEN = "bench-functions-admin-token"
MODEL = "iris"
SPEC = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 100}}
ROW = [6.3, 3.3, 6.0, 2.5]  # a virginica from the dataset
TARGETS = {"warm_p50_ms_1_row": 1.0, "requests_per_second_1_row": 3000, "cold_start_ms": 300, "rss_mb": 80}
