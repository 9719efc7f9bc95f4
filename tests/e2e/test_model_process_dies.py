"""The model process dies in the middle of a reply: the window says so readably, keeps what was
written (marked as an error), forgets the dead model, and a new load works."""

from __future__ import annotations

import os
import signal

import pytest
from PySide6.QtWidgets import QLabel

from tests.e2e.conftest import load_model, rows, set_sampling, type_and_send

pytestmark = pytest.mark.timeout(300)


def test_a_crashed_model_process_is_an_error_message_not_a_crash(qtbot, open_window):
    window = open_window()
    page = window.chat_page
    load_model(qtbot, window)
    window.chat.new_session()
    set_sampling(window, max_tokens=1500, temperature=0.8)
    with qtbot.waitSignal(window.replies.text_arrived, timeout=60000):
        type_and_send(qtbot, window, "Tell me a long story about the sea.", wait=False)
    with qtbot.waitSignal(window.runtime.unloaded, timeout=30000):
        os.kill(window.services.chat_model.host.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not window.replies.generating, timeout=30000)
    assert window.error_bar.isVisible()
    assert "model process stopped" in window.error_bar.message.text()
    assert "Traceback" not in window.error_bar.message.text() + window.error_bar.hint.text()
    reply = rows(window)[-1].message
    assert reply.status == "error" and reply.content.strip()  # what came before the crash is kept
    assert window.findChild(QLabel, "modelStatusLabel").text() == "No model loaded"
    assert page.model_bar.load_button.text() == "Load"

    load_model(qtbot, window)  # the window is still usable: load again and chat
    set_sampling(window, max_tokens=8, temperature=0.0)
    type_and_send(qtbot, window, "Say hi.")
    assert rows(window)[-1].message.status == "complete"


def test_closing_the_window_mid_reply_keeps_it_and_stops_the_model(qtbot, open_window):
    window = open_window()
    load_model(qtbot, window)
    session = window.chat.new_session()
    set_sampling(window, max_tokens=1500, temperature=0.8)
    with qtbot.waitSignal(window.replies.text_arrived, timeout=60000):
        type_and_send(qtbot, window, "Tell me a long story about the mountains.", wait=False)
    host = window.services.chat_model.host
    window.close()  # cancels the reply, waits for its thread, stops the model process
    assert not host.alive
    reply = window.services.chats.branch(session.id)[-1]
    assert reply.role == "assistant" and reply.status == "cancelled" and reply.content.strip()
