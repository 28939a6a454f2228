"""The study's simulator lives in bench/study (a benchmark package, not installed): put bench/ on the path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
