"""Every benchmark runs with a tiny budget (--smoke) and prints its summary line: they stay runnable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_smoke(script):
    result = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                            cwd=ROOT, timeout=280)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "summary:" in result.stdout
