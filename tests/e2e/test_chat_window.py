"""The Chat page driven as a user would: real window, real SmolLM2 host, real database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QListView, QMessageBox, QPlainTextEdit, QPushButton

from app.services import Services
from app.views.main_window import MainWindow
from engine.paths import EmberPaths

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def open_window(qtbot, ember_home):
    """Opens windows on the test's home; closes them (stopping their hosts) at the end."""
    windows = []

    def opener():
        services = Services(EmberPaths(ember_home).ensure())
        window = MainWindow(services)
        qtbot.addWidget(window)
        window.show()
        windows.append((window, services))
        return window

    yield opener
    for window, services in windows:
        window.close()
        services.close()


def load_model(qtbot, window):
    page = window.chat_page
    page.settings.context.setValue(1024)
    with qtbot.waitSignal(window.models.loaded, timeout=60000):
        qtbot.mouseClick(window.findChild(QPushButton, "loadModelButton"), Qt.MouseButton.LeftButton)
    return page


def send(qtbot, window, text, max_tokens=16):
    page = window.chat_page
    page.settings.max_tokens.setValue(max_tokens)
    page.settings.temperature.setValue(0.0)
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    qtbot.keyClicks(prompt, text)
    with qtbot.waitSignal(window.chat.generating_changed, timeout=30000, check_params_cb=lambda on: not on):
        qtbot.keyClick(prompt, Qt.Key.Key_Return)
    return page


def rows(page):
    return [page.message_model.item_at(r) for r in range(page.message_model.rowCount())]


def test_send_stream_stop_regenerate_edit_switch_search_export_restart(qtbot, open_window, tmp_path, monkeypatch):
    window = open_window()
    page = load_model(qtbot, window)
    assert "template gguf" in window.findChild(type(page.model_label), "modelStatusLabel").text()
    qtbot.mouseClick(window.findChild(QPushButton, "newChatButton"), Qt.MouseButton.LeftButton)

    # send: the reply streams in and is saved complete with stats
    send(qtbot, window, "What is the capital of France?")
    user, reply = rows(page)
    assert user.message.content == "What is the capital of France?"
    assert reply.message.status == "complete" and reply.message.content
    assert reply.message.stats.completion_tokens > 0
    assert page.session_list.model().index(0).data() .startswith("What is the capital")

    # stop a long reply: it is kept, marked cancelled
    page.settings.max_tokens.setValue(2000)
    page.settings.temperature.setValue(0.8)
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    qtbot.keyClicks(prompt, "Write a very long story about a dragon.")
    with qtbot.waitSignal(window.chat.text_arrived, timeout=30000):
        qtbot.keyClick(prompt, Qt.Key.Key_Return)
    with qtbot.waitSignal(window.chat.generating_changed, timeout=10000):
        qtbot.mouseClick(window.findChild(QPushButton, "stopButton"), Qt.MouseButton.LeftButton)
    stopped = rows(page)[-1].message
    assert stopped.status == "cancelled" and stopped.content

    # regenerate the last reply: a second version appears, both kept
    page.settings.max_tokens.setValue(12)
    page.select_message(3)
    with qtbot.waitSignal(window.chat.generating_changed, timeout=30000, check_params_cb=lambda on: not on):
        qtbot.mouseClick(window.findChild(QPushButton, "regenerateButton"), Qt.MouseButton.LeftButton)
    assert rows(page)[-1].sibling_count == 2 and rows(page)[-1].sibling_index == 2

    # edit the first prompt and resend: a branch; switch back and forth
    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: ("What is the capital of Italy?", True))
    page.select_message(0)
    with qtbot.waitSignal(window.chat.generating_changed, timeout=30000, check_params_cb=lambda on: not on):
        qtbot.mouseClick(window.findChild(QPushButton, "editMessageButton"), Qt.MouseButton.LeftButton)
    assert [r.message.content for r in rows(page)][0] == "What is the capital of Italy?"
    assert len(rows(page)) == 2 and rows(page)[0].sibling_count == 2
    page.select_message(0)
    assert page.findChild(type(page.branch_label), "branchLabel").text() == "2/2"
    qtbot.mouseClick(window.findChild(QPushButton, "previousBranchButton"), Qt.MouseButton.LeftButton)
    assert rows(page)[0].message.content == "What is the capital of France?"
    assert len(rows(page)) == 4  # the France branch with its two turns
    page.select_message(0)
    qtbot.mouseClick(window.findChild(QPushButton, "nextBranchButton"), Qt.MouseButton.LeftButton)
    assert rows(page)[0].message.content == "What is the capital of Italy?"

    # search over all chats
    qtbot.keyClicks(page.search_edit, "dragon")
    qtbot.waitUntil(lambda: page.sessions_model.rowCount() == 1, timeout=3000)
    page.search_edit.clear()
    qtbot.waitUntil(lambda: page.sessions_model.rowCount() >= 1, timeout=3000)

    # export to JSON and Markdown, import back as a new chat
    exported = window.chat.export(tmp_path / "chat.json")
    data = json.loads(exported.read_text())
    assert data["format"] == "ember-chat" and data["version"] == 1 and len(data["messages"]) == 7
    markdown = window.chat.export(tmp_path / "chat.md").read_text()
    assert "What is the capital of Italy?" in markdown
    imported = window.chat.import_file(tmp_path / "chat.json")
    assert imported is not None and len(window.chat.sessions()) == 2
    assert [r.message.content for r in rows(page)][0] == "What is the capital of Italy?"
    before = {s.title: [m.content for m in window.services.chats.messages(s.id)] for s in window.chat.sessions()}
    window.close()

    # restart on the same home: everything is as it was
    again = open_window()
    after = {s.title: [m.content for m in again.services.chats.messages(s.id)] for s in again.chat.sessions()}
    assert after == before


def test_delete_chat_and_undo(qtbot, open_window):
    window = open_window()
    page = window.chat_page
    first = window.chat.new_session()
    window.chat.rename(first.id, "Keep me")
    qtbot.mouseClick(window.findChild(QPushButton, "deleteChatButton"), Qt.MouseButton.LeftButton)
    assert all(s.id != first.id for s in window.chat.sessions())
    undo = window.findChild(QPushButton, "undoDeleteButton")
    assert undo.isVisible()
    qtbot.mouseClick(undo, Qt.MouseButton.LeftButton)
    assert [s.title for s in window.chat.sessions()] == ["Keep me"]
    assert page.findChild(QListView, "sessionList").model().rowCount() == 1


def test_sending_without_a_model_says_what_to_do(qtbot, open_window):
    window = open_window()
    window.chat.new_session()
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    qtbot.keyClicks(prompt, "hello")
    with qtbot.waitSignal(window.chat.error) as blocker:
        qtbot.keyClick(prompt, Qt.Key.Key_Return)
    assert "No model" in blocker.args[0].message and "Load" in blocker.args[0].hint
    assert prompt.toPlainText() == "hello"  # nothing lost


def test_context_overflow_asks_before_dropping_anything(qtbot, open_window, ember_home):
    window = open_window()
    page = load_model(qtbot, window)
    session = window.chat.new_session()
    repo = window.services.chats
    window.chat.update_settings(system_prompt="You are terse.")
    parent = None
    for i in range(12):
        parent = repo.add_message(session.id, parent.id if parent else None, "user", f"Question {i}: " + "blah " * 40)
        parent = repo.add_message(session.id, parent.id, "assistant", "ok " * 20)
    window.chat.select(session.id)
    count_before = len(repo.messages(session.id))
    page.settings.context.setValue(512)
    page.settings.flush()

    answers = []

    def answer(button_name):
        def click():
            box = QApplication.activeModalWidget()
            assert isinstance(box, QMessageBox) and box.objectName() == "overflowDialog"
            answers.append(box.text())
            box.findChild(QPushButton, button_name).click()
        QTimer.singleShot(200, click)

    # first the user cancels: nothing is sent, nothing is cut
    answer("cancelSendButton")
    with qtbot.waitSignal(window.chat.overflow, timeout=10000):
        page.prompt_edit.setPlainText("One more?")
        page.send()
    qtbot.waitUntil(lambda: bool(answers), timeout=5000)
    assert "Drop the oldest turns" in answers[0]
    assert len(repo.messages(session.id)) == count_before
    # then chooses to drop the oldest turns: the reply comes, the stored chat keeps every turn
    answer("dropOldestButton")
    with qtbot.waitSignal(window.chat.generating_changed, timeout=30000, check_params_cb=lambda on: not on):
        page.prompt_edit.setPlainText("One more?")
        page.send()
    assert len(repo.messages(session.id)) == count_before + 2
    reply = repo.branch(session.id)[-1]
    assert reply.status == "complete" and reply.stats.prompt_tokens + reply.stats.completion_tokens <= 512


DRIVER = Path(__file__).with_name("app_driver.py")
ROOT = Path(__file__).resolve().parents[2]


def test_killed_during_a_reply_keeps_a_consistent_database_and_the_partial_reply(ember_home):
    env = dict(os.environ, EMBER_HOME=str(ember_home), PYTHONPATH=str(ROOT))
    app = subprocess.Popen([sys.executable, str(DRIVER), "stream"], stdout=subprocess.PIPE, text=True, env=env,
                           cwd=ROOT)
    try:
        assert app.stdout.readline().strip() == "STREAMING"
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait()
    conn = sqlite3.connect(ember_home / "ember.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    content, status = conn.execute("SELECT content, status FROM messages WHERE role = 'assistant'").fetchone()
    assert status == "streaming" and len(content) > 10  # saved while streaming, at most 0.5 s behind
    conn.close()
    # the next start marks it interrupted and keeps the text
    assert subprocess.run([sys.executable, str(DRIVER), "quit"], env=env, cwd=ROOT, timeout=60).returncode == 0
    conn = sqlite3.connect(ember_home / "ember.db")
    assert conn.execute("SELECT content, status FROM messages WHERE role = 'assistant'").fetchone() == (
        content, "interrupted")
    conn.close()


def test_a_second_window_on_the_same_home_is_refused(ember_home):
    env = dict(os.environ, EMBER_HOME=str(ember_home), PYTHONPATH=str(ROOT))
    from engine.store.lock import HomeLock

    with HomeLock(EmberPaths(ember_home).lock).acquire("the Ember window"):
        result = subprocess.run([sys.executable, "-m", "app"], env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert "in use by the Ember window" in result.stderr
