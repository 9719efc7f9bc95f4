"""Every Qt model passes qtmodeltester, and exposes what views and screen readers need."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt

from app.models.message_model import DisplayMessage, MessageModel, MessageRole
from app.models.session_list_model import SessionIdRole, SessionListModel
from engine.jobs import GenerationStats
from engine.store.chats import Message, Session


def make_message(i: int, role: str = "user", content: str = "hello") -> Message:
    return Message(i, 1, i - 1 if i > 1 else None, role, content, "complete", time.time(),
                   stats=GenerationStats("stop", completion_tokens=3) if role == "assistant" else None)


def test_session_list_model(qtmodeltester):
    model = SessionListModel()
    now = time.time()
    model.set_sessions([Session(1, "First", now, now), Session(2, "Second", now - 5000, now - 5000)],
                       {2: "a [match]"})
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert model.index(1).data(SessionIdRole) == 2
    assert "[match]" in model.index(1).data(Qt.ItemDataRole.ToolTipRole)
    assert "Chat First" in model.index(0).data(Qt.ItemDataRole.AccessibleTextRole)
    assert model.row_of(2) == 1 and model.row_of(9) == -1


def test_message_model_streams_into_one_row(qtmodeltester, qtbot):
    model = MessageModel()
    model.set_messages([DisplayMessage(make_message(1)), DisplayMessage(make_message(2, "assistant", ""), 2, 3)])
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.dataChanged) as blocker:
        model.append_text(2, "Hi")
    assert blocker.args[0].row() == 1
    model.append_text(2, " there")
    assert model.index(1).data() == "Hi there"
    said = model.index(1).data(Qt.ItemDataRole.AccessibleTextRole)
    assert said.startswith("Assistant") and "version 2 of 3" in said and "Hi there" in said
    assert model.index(1).data(MessageRole).sibling_count == 3
    qtmodeltester.check(model)
