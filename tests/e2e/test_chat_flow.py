"""The Chat page driven as a user would: the real window, the real SmolLM2 host, the real database.

One window and one model load cover the whole flow (send, stop, regenerate, edit and switch
branches, search, export and import), then a second window on the same home finds it all again.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel, QStyleOptionViewItem

from tests.e2e.conftest import CONTEXT, click, load_model, rows, set_sampling, type_and_send

pytestmark = pytest.mark.timeout(300)


def snapshot(services):
    """Everything a user could see of every chat: sessions, their settings, every message and branch."""
    chats = services.chats
    return [(s.title, s.system_prompt, s.sampling, s.current_leaf_id,
             [(m.id, m.parent_id, m.role, m.content, m.status, m.provenance, m.stats) for m in chats.messages(s.id)])
            for s in chats.list_sessions()]


def click_branch_chip(qtbot, window, row: int, step: int) -> None:
    """Click the ◀ or ▶ painted under a message (not the button bar)."""
    page = window.chat_page
    view, delegate = page.view, page.view.message_delegate
    index = page.message_model.index(row)
    view.scrollTo(index)
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    geometry = delegate._geometry(page.message_model.item_at(row), option)
    chip = geometry.prev_chip if step < 0 else geometry.next_chip
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=chip.center().toPoint())


def test_a_whole_conversation_survives_a_restart(qtbot, open_window, tmp_path):
    window = open_window()
    page = window.chat_page
    load_model(qtbot, window)
    assert f"context {CONTEXT}" in window.findChild(QLabel, "modelStatusLabel").text()  # "Loaded · context N"
    assert "SmolLM2" in window.findChild(QLabel, "statusModel").text()
    click(qtbot, window, "newChatButton")
    set_sampling(window, max_tokens=12)

    # send: the reply streams in, is saved complete, with stats and provenance
    type_and_send(qtbot, window, "What is the capital of France?")
    user, reply = rows(window)
    assert user.message.content == "What is the capital of France?"
    assert reply.message.status == "complete" and reply.message.content.strip()
    assert reply.message.stats.completion_tokens > 0 and reply.message.stats.ttft_s is not None
    assert reply.message.provenance.model_name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert reply.message.provenance.quantization and reply.message.provenance.sampling["max_tokens"] == 12
    assert page.sessions.model.index(0).data().startswith("What is the capital")
    assert page.composer.prompt.toPlainText() == ""  # cleared once the turn started

    # stop a long reply: what came is kept, marked as stopped
    set_sampling(window, max_tokens=1500, temperature=0.8)
    with qtbot.waitSignal(window.replies.text_arrived, timeout=60000):
        type_and_send(qtbot, window, "Write a very long story about a dragon.", wait=False)
    with qtbot.waitSignal(window.replies.generating_changed, timeout=20000):
        click(qtbot, window, "stopButton")
    stopped = rows(window)[-1].message
    assert stopped.status == "cancelled" and stopped.content.strip()
    assert stopped.stats.completion_tokens < 1500

    # regenerate the stopped reply: a second version, both kept
    set_sampling(window, max_tokens=8)
    page.select_message(3)
    with qtbot.waitSignal(window.replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
        click(qtbot, window, "regenerateButton")
    assert (rows(window)[-1].sibling_index, rows(window)[-1].sibling_count) == (2, 2)

    # provenance of the new reply: model file, SHA-256 (hashed once, in a worker), quantization, seed
    qtbot.waitUntil(lambda: window.services.chat_model.sha256 is not None, timeout=20000)
    digest = window.services.chat_model.sha256  # every reply of this file gets it, even those made before
    replies = [m for m in window.services.chats.messages(window.chat.session_id) if m.role == "assistant"]
    assert len(replies) >= 2 and all(m.provenance.model_sha256 == digest for m in replies)
    assert {m.provenance.model_path for m in replies} == {window.services.chat_model.path}
    page.select_message(3)
    click(qtbot, window, "provenanceButton")
    details = page.details_dialog.text()
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in details and "Seed: 7" in details and "Q4_1" in details
    page.details_dialog.close()

    # edit the first prompt and send it again: a new branch; switch both ways
    page.select_message(0)
    click(qtbot, window, "editMessageButton")
    assert page.composer.prompt.toPlainText() == "What is the capital of France?"
    page.composer.prompt.setPlainText("What is the capital of Italy?")
    with qtbot.waitSignal(window.replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
        click(qtbot, window, "sendButton")
    assert [r.message.content for r in rows(window)][0] == "What is the capital of Italy?"
    assert len(rows(window)) == 2 and (rows(window)[0].sibling_index, rows(window)[0].sibling_count) == (2, 2)
    page.select_message(0)
    assert window.findChild(QLabel, "branchLabel").text() == "2/2"
    click(qtbot, window, "previousBranchButton")
    assert rows(window)[0].message.content == "What is the capital of France?"
    assert len(rows(window)) == 4  # the France branch, with the newest version of each reply
    click_branch_chip(qtbot, window, 0, +1)  # the ▶ painted under the message
    assert rows(window)[0].message.content == "What is the capital of Italy?"
    click_branch_chip(qtbot, window, 0, -1)
    assert rows(window)[0].message.content == "What is the capital of France?"
    click_branch_chip(qtbot, window, 0, +1)

    # search every message: the hit opens the branch that holds it
    qtbot.keyClicks(page.sessions.search, "dragon")
    qtbot.waitUntil(lambda: page.sessions.model.rowCount() == 1 and "«dragon" in
                    (page.sessions.model.index(0).data(Qt.ItemDataRole.ToolTipRole) or ""), timeout=5000)
    hit = page.sessions.model.index(0)
    qtbot.mouseClick(page.sessions.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.sessions.list.visualRect(hit).center())
    assert any("dragon" in r.message.content for r in rows(window))
    page.sessions.search.clear()
    qtbot.waitUntil(lambda: page.sessions.model.rowCount() == 1 and "«" not in page.sessions.model.index(0).data(
        Qt.ItemDataRole.ToolTipRole), timeout=5000)

    # export to Markdown and JSON through the dialog, then import the JSON as a new chat
    exported = {}
    for name in ("chat.md", "chat.json"):
        page.sessions.export_dialog()
        dialog = window.findChild(QFileDialog, "exportDialog")
        dialog.fileSelected.emit(str(tmp_path / name))
        dialog.close()
        dialog.deleteLater()
        exported[name] = (tmp_path / name).read_text(encoding="utf-8")
    data = json.loads(exported["chat.json"])
    assert data["format"] == "ember-chat" and data["version"] == 1 and len(data["messages"]) == 7
    assert any(m["provenance"]["model_sha256"] for m in data["messages"] if m["role"] == "assistant")
    assert "dragon" in exported["chat.md"] and "**You:**" in exported["chat.md"]
    page.sessions.import_dialog()
    dialog = window.findChild(QFileDialog, "importDialog")
    dialog.fileSelected.emit(str(tmp_path / "chat.json"))
    dialog.close()
    assert page.sessions.model.rowCount() == 2
    assert [r.message.content for r in rows(window)][0] == "What is the capital of France?"
    imported_id = window.chat.session_id
    assert len(window.services.chats.messages(imported_id)) == 7

    before = snapshot(window.services)
    window.close()

    # restart on the same home: everything is as it was
    again = open_window()
    assert snapshot(again.services) == before
    assert again.chat_page.sessions.model.rowCount() == 2
    assert again.chat_page.message_model.rowCount() > 0
