"""The bench scripts import each other as top-level modules (``from harness import ...``)."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))
