"""Settings → Move…: the data is copied with progress, the restart is offered, a folder that cannot
work is refused in words, and with EMBER_HOME set the button is off and says why."""

from __future__ import annotations

import pytest

from app.testing.helpers import SignalLog, wait_until
from app.views.move_data_row import MoveDataRow
from app.workers import WorkerRunner
from engine.paths import EmberPaths, read_home_pointer
from engine.store.chats import ChatRepository
from engine.store.db import connect


@pytest.fixture
def home(tmp_path, monkeypatch) -> EmberPaths:
    """A home with one chat, found without EMBER_HOME (as a desktop start finds it)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("EMBER_HOME", raising=False)
    paths = EmberPaths(tmp_path / "home").ensure()
    conn = connect(paths.db)
    ChatRepository(conn).create_session("Kept")
    conn.close()
    return paths


@pytest.fixture
def row(qtbot, home):
    runner = WorkerRunner()
    widget = MoveDataRow(home, runner)
    qtbot.addWidget(widget)
    yield widget
    runner.shutdown()


def test_moving_copies_the_data_and_offers_a_restart(row, home, tmp_path):
    widget = row
    widget.show()
    moved = SignalLog(widget.moved)
    widget.move_to(str(tmp_path / "new-home"))
    wait_until(lambda: moved.calls, timeout=30, what="the move to finish")
    assert moved.calls == [(str(tmp_path / "new-home"),)]
    assert widget.restart_button.isVisible() and not widget.move_button.isEnabled()
    assert "Restart Ember" in widget.note.text() and str(home.home) in widget.note.text()
    conn = connect(tmp_path / "new-home" / "ember.db")
    assert [s.title for s in ChatRepository(conn).list_sessions()] == ["Kept"]
    conn.close()
    assert read_home_pointer() == tmp_path / "new-home"


def test_a_folder_in_use_is_refused_in_words_and_nothing_moves(row, home, tmp_path):
    widget = row
    errors = SignalLog(widget.error_shown)
    used = tmp_path / "used"
    used.mkdir()
    (used / "theirs.txt").write_text("theirs")
    ended = SignalLog(widget.move_to(str(used)).finished)
    wait_until(lambda: ended.calls, timeout=30, what="the refusal")
    assert "not empty" in errors.calls[0][0].message
    assert widget.move_button.isEnabled() and not widget.restart_button.isVisible()
    assert sorted(p.name for p in used.iterdir()) == ["theirs.txt"] and read_home_pointer() is None


def test_with_ember_home_set_the_button_is_off_and_says_why(qtbot, home, monkeypatch):
    monkeypatch.setenv("EMBER_HOME", str(home.home))
    runner = WorkerRunner()
    widget = MoveDataRow(home, runner)
    qtbot.addWidget(widget)
    assert not widget.move_button.isEnabled()
    assert "EMBER_HOME is set" in widget.note.text()
    runner.shutdown()
