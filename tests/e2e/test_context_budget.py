"""Context budget: the bar warns while the user types, and before anything is cut the user chooses."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox, QPushButton

from tests.e2e.conftest import load_model, rows, set_sampling

pytestmark = pytest.mark.timeout(300)


def test_a_chat_longer_than_the_context_asks_before_dropping_anything(qtbot, open_window):
    window = open_window()
    page = window.chat_page
    load_model(qtbot, window)
    session = window.chat.new_session()
    repo = window.services.chats
    window.chat.update_settings(system_prompt="You are terse.")
    parent = None
    for i in range(12):
        parent = repo.add_message(session.id, parent.id if parent else None, "user", f"Question {i}: " + "blah " * 40)
        parent = repo.add_message(session.id, parent.id, "assistant", "ok " * 20)
    window.chat.select(session.id)
    stored = [m.id for m in repo.messages(session.id)]
    page.settings.context.setValue(512)  # the chat's context: less than the model was loaded with
    set_sampling(window, max_tokens=16)

    # the warning shows while typing, before anything is sent
    with qtbot.waitSignal(window.replies.budget_changed, timeout=20000,
                          check_params_cb=lambda b: b is not None and b.overflows):
        page.composer.prompt.setPlainText("One more?")
    assert "Over by" in page.composer.budget_label.text()
    assert page.composer.budget_bar.budget.context_length == 512

    # Send: the question comes first; "Don't send" sends nothing and cuts nothing, the text stays
    with qtbot.waitSignal(window.replies.overflow, timeout=20000):
        page.composer.submit()
    box = page.overflow_dialog
    assert isinstance(box, QMessageBox) and box.isVisible() and box.objectName() == "overflowDialog"
    assert "512" in box.text() and "system prompt is kept" in box.informativeText()
    box.findChild(QPushButton, "cancelSendButton").click()
    assert [m.id for m in repo.messages(session.id)] == stored
    assert page.composer.prompt.toPlainText() == "One more?"
    assert not window.replies.generating

    # Send again and choose to drop the oldest turns: the reply comes; every stored turn is still there
    with qtbot.waitSignal(window.replies.overflow, timeout=20000):
        page.composer.submit()
    with qtbot.waitSignal(window.replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
        page.overflow_dialog.findChild(QPushButton, "dropOldestButton").click()
    assert [m.id for m in repo.messages(session.id)][: len(stored)] == stored
    assert len(repo.messages(session.id)) == len(stored) + 2
    reply = rows(window)[-1].message
    assert reply.status == "complete"
    assert reply.stats.prompt_tokens + 16 <= 512  # what the model saw fit the chat's context
    assert rows(window)[0].message.content.startswith("Question 0")  # the chat itself still shows all
