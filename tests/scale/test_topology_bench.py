"""bench/topology_bench.py runs end to end (a few hundred sessions per
topology, every one answered OK). Only that it works is checked here, never
how fast: timings on a shared CI machine mean nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_quick_topology_benchmark_runs_clean():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "topology_bench.py"), "--quick"],
                            cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.strip("|").split("|") for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| topology")]
    assert [r[0].strip() for r in rows] == ["single", "sentinel", "cluster"]
    assert all(r[-1].strip() == "0" for r in rows), result.stdout  # errors
    assert rows[0][3].strip() == "1.00x"
