"""Every benchmark runs with a tiny budget (--smoke) and prints its summary line: they stay runnable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOAK = ROOT / "benchmarks" / "soak.py"
BENCHMARKS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p != SOAK)


def smoke(script: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True,
                            cwd=ROOT, timeout=280)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "summary:" in result.stdout
    return result


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_smoke(script):
    smoke(script)


@pytest.mark.timeout(300)
def test_soak_smoke_does_each_thing_once_without_errors_or_leftovers():
    result = smoke(SOAK)
    figures = json.loads(result.stdout.split("summary:", 1)[1])
    assert set(figures["counts"]) == {"generate", "cancel", "drop", "query", "add_document", "remove_document",
                                      "reload"}
    assert figures["errors"] == 0, result.stderr[-3000:]  # soak.py prints each error there
    assert figures["children_left"] == 0 and figures["threads_left"] == 0
