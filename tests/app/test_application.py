"""Start-up: the real `python -m app` paints a window without loading heavy modules, logs where it
should, refuses a second start on the same home, and tidies what a crash left."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

import app.application as application
from app.application import open_home
from engine.errors import HomeLocked
from engine.paths import EmberPaths
from engine.store.chats import ChatRepository
from engine.store.db import connect
from engine.store.lock import HomeLock

ROOT = Path(__file__).resolve().parents[2]


def run_app(home: Path, **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, EMBER_HOME=str(home), QT_QPA_PLATFORM="offscreen", **env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=120)


def test_the_window_paints_without_heavy_modules_and_logs(ember_home):
    result = run_app(ember_home, EMBER_EXIT_AFTER_FIRST_PAINT="1")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy_modules"] == []  # no llama_cpp, jinja2, gguf, numpy, templates, host code
    assert (ember_home / "logs" / "ember.log").read_text().count("first paint") == 1
    assert (ember_home / "logs" / "crash.log").exists()
    assert (ember_home / "window.ini").exists() and (ember_home / "ember.db").exists()


def test_a_second_start_on_the_same_home_says_it_is_in_use(ember_home):
    lock = HomeLock(EmberPaths(ember_home).ensure().lock).acquire("the Ember window")
    try:
        result = run_app(ember_home, EMBER_EXIT_AFTER_FIRST_PAINT="1")
    finally:
        lock.release()
    assert result.returncode == 1
    assert "is in use by the Ember window" in result.stderr
    assert "Close the other Ember window" in result.stderr
    assert "Traceback" not in result.stderr


def test_open_home_recovers_streaming_replies_and_empties_the_bin(ember_home):
    paths = EmberPaths(ember_home).ensure()
    repo = ChatRepository(connect(paths.db))
    kept = repo.create_session("kept")
    user = repo.add_message(kept.id, None, "user", "hi")
    reply = repo.add_message(kept.id, user.id, "assistant", "half a repl", status="streaming")
    binned = repo.create_session("binned")
    repo.delete_session(binned.id)
    repo.conn.close()

    lock, services = open_home(paths)
    try:
        assert services.chats.get_message(reply.id).status == "interrupted"
        assert services.chats.get_message(reply.id).content == "half a repl"
        assert [s.title for s in services.chats.list_sessions()] == ["kept"]
        assert services.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1
        with pytest.raises(HomeLocked, match="in use"):
            HomeLock(paths.lock).acquire()
    finally:
        services.close()
        lock.release()


def test_a_refusal_is_also_a_dialog_when_started_from_a_desktop(monkeypatch, qapp):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not application.launched_from_desktop()  # tests, CI: stderr only
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert application.launched_from_desktop()
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text: shown.append((title, text)))
    application.tell_in_a_dialog(HomeLocked("/x is in use by the Ember window."))
    assert shown == [("Ember", "/x is in use by the Ember window.\n\n" + HomeLocked.default_hint)]


def test_a_damaged_database_opens_the_window_with_what_was_recovered(ember_home, qtbot):
    """Random bytes over ember.db: the real app starts (exit 0 after painting), keeps the damaged file,
    brings the chats back from the backup its last clean exit made, and says so in the window."""
    from engine.store.recovery import backup_database
    from tests.support.started import started_window

    paths = EmberPaths(ember_home).ensure()
    repo = ChatRepository(connect(paths.db))
    repo.create_session("Before the damage")
    repo.conn.close()
    backup_database(paths)  # what a clean exit leaves
    paths.db.write_bytes(os.urandom(16384))
    result = run_app(ember_home, EMBER_EXIT_AFTER_FIRST_PAINT="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "damaged" in (ember_home / "logs" / "ember.log").read_text()
    assert len(list(ember_home.glob("ember.db.damaged-*"))) == 1
    assert [s.title for s in ChatRepository(connect(paths.db)).list_sessions()] == ["Before the damage"]

    paths.db.write_bytes(os.urandom(16384))  # once more, now with the window in this process
    with started_window(paths, qtbot) as window:
        assert window.recovery_bar.isVisible()
        assert "Recovered 1 chat, 0 messages" in window.recovery_bar.message.text()
        assert "damaged" in window.recovery_bar.message.text()
