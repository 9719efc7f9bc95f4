"""One turn, one cancel: from the click to the last token a turn has one state and one cancel token.

Esc during the count stops the turn before anything is written; the chat cannot be switched or
deleted while a turn is counting, asking or streaming; the reply lands in the chat it was asked in.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.e2e.conftest import load_model

pytestmark = pytest.mark.timeout(180)


def test_stop_while_counting_writes_nothing_and_the_chat_stays(qtbot, open_window):
    window = open_window()
    load_model(qtbot, window)
    replies, chat = window.replies, window.chat
    other = chat.new_session().id
    asked = chat.new_session().id
    before = len(window.services.chats.messages(asked))
    with qtbot.waitSignal(replies.generating_changed, timeout=30000, check_params_cb=lambda on: not on):
        replies.send("Tell me about rivers.")
        assert replies.turn is not None and replies.turn.state == "counting"
        chat.select(other)  # refused: a turn is active
        assert chat.session_id == asked
        chat.delete(asked)  # refused too
        assert window.services.chats.get_session(asked) is not None
        qtbot.keyClick(window.chat_page.composer.prompt, Qt.Key.Key_Escape)  # Esc reaches the count
    assert replies.turn is None
    assert len(window.services.chats.messages(asked)) == before  # nothing written
    assert not window.error_bar.isVisible()  # a stop is not an error
    # the next turn works, and its reply is written into the chat it was asked in
    with qtbot.waitSignal(replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
        replies.send("Say hi.")
    roles = [m.role for m in window.services.chats.branch(asked)]
    assert roles == ["user", "assistant"]
    assert window.services.chats.branch(other) == []


def test_stop_during_the_overflow_question_sends_nothing(qtbot, open_window):
    window = open_window()
    load_model(qtbot, window, context=512)
    replies, chat = window.replies, window.chat
    sid = chat.new_session().id
    with qtbot.waitSignal(replies.overflow, timeout=30000):
        replies.send("word " * 400)
    assert replies.turn.state == "asking" and replies.generating
    with qtbot.waitSignal(replies.generating_changed, timeout=5000, check_params_cb=lambda on: not on):
        replies.stop()
    assert window.services.chats.messages(sid) == []
    replies.answer_overflow(True)  # a late answer to a stopped question does nothing
    assert replies.turn is None
