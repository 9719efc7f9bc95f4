"""The Chat page without a model: sessions, search, branches, code copy, details, settings, presets,
export and import, and a 1,000-message chat."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QStyleOptionViewItem,
)

from app.views.message_layout import footer_text
from tests.app.conftest import CODE_REPLY, seed_branching_chat, seed_long_chat


def click(qtbot, window, name: str) -> None:
    button = window.findChild(QAbstractButton, name)
    assert button is not None and button.isEnabled(), name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def geometry_of(page, row: int):
    view = page.view
    index = page.message_model.index(row)
    view.scrollTo(index)
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    return view.message_delegate._geometry(page.message_model.item_at(row), option)


def contents(page) -> list[str]:
    return [page.message_model.item_at(r).message.content for r in range(page.message_model.rowCount())]


def test_new_rename_delete_undo_and_search(window, qtbot):
    page = window.chat_page
    click(qtbot, window, "newChatButton")
    first = window.chat.session_id
    # rename in place, as F2 + typing would
    page.sessions.rename_current()
    editor = page.sessions.list.findChild(QLineEdit)
    assert editor is not None
    editor.setText("Recipes")
    with qtbot.waitSignal(page.sessions.model.rename_requested):  # the editor commits on the next turn
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert window.services.chats.get_session(first).title == "Recipes"
    window.services.chats.add_message(first, None, "user", "How long do I boil an egg?")
    click(qtbot, window, "newChatButton")
    assert page.sessions.model.rowCount() == 2 and page.sessions.model.index(0).data() == "New chat"

    # search over every message
    qtbot.keyClicks(page.sessions.search, "boil")
    qtbot.waitUntil(lambda: page.sessions.model.rowCount() == 1, timeout=3000)
    assert "«boil" in page.sessions.model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    qtbot.mouseClick(page.sessions.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.sessions.list.visualRect(page.sessions.model.index(0)).center())
    assert window.chat.session_id == first and contents(page) == ["How long do I boil an egg?"]
    page.sessions.search.clear()
    qtbot.waitUntil(lambda: page.sessions.model.rowCount() == 2, timeout=3000)

    # delete with undo
    click(qtbot, window, "deleteChatButton")
    assert [s.title for s in window.chat.sessions()] == ["New chat"]
    assert page.sessions.undo_bar.isVisible() and "Recipes" in page.sessions.undo_bar.message.text()
    click(qtbot, window, "undoDeleteButton")
    assert sorted(s.title for s in window.chat.sessions()) == ["New chat", "Recipes"]
    assert window.chat.session_id == first and contents(page) == ["How long do I boil an egg?"]


def test_branches_statuses_code_copy_and_details(window, qtbot):
    page = window.chat_page
    session_id = seed_branching_chat(window.services.chats)
    window.chat.select(session_id)
    assert contents(page) == ["How do I square numbers?", CODE_REPLY, "And the even ones?", "Add a condition"]
    stopped = page.message_model.item_at(3)
    assert footer_text(stopped).startswith("Stopped before the end")
    assert "first token 0.07 s" in footer_text(page.message_model.item_at(1))

    # the Copy button painted on the code block copies just the code
    geometry = geometry_of(page, 1)
    assert len(geometry.copy_chips) == 1
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=geometry.copy_chips[0][0].center().toPoint())
    assert QApplication.clipboard().text() == "squares = [n * n for n in numbers]"

    # ◀ 2/2 ▶ under the reply, and the same from the keyboard bar
    page.select_message(1)
    assert window.findChild(QLabel, "branchLabel").text() == "2/2"
    click(qtbot, window, "previousBranchButton")
    assert contents(page) == ["How do I square numbers?", "Multiply each by itself."]
    geometry = geometry_of(page, 1)
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=geometry.next_chip.center().toPoint())
    assert contents(page)[1] == CODE_REPLY and len(contents(page)) == 4  # back, with its replies

    # details: provenance of the reply
    page.select_message(1)
    click(qtbot, window, "provenanceButton")
    text = page.details_dialog.text()
    for expected in ("SmolLM2-135M-Instruct.Q4_1.gguf", "ab" * 32, "Q4_1", "t123", "Seed: 42", '"temperature": 0.7'):
        assert expected in text
    page.details_dialog.close()

    # delete a message (after confirming): its replies go too
    page.select_message(2)
    click(qtbot, window, "deleteMessageButton")
    box = page.findChild(QMessageBox, "deleteMessageDialog")
    box.findChild(QAbstractButton, "confirmDeleteMessageButton").click()
    assert contents(page) == ["How do I square numbers?", CODE_REPLY]


def test_settings_are_per_chat_and_presets(window, qtbot):
    s = window.chat_page.settings
    first = window.chat.new_session().id
    s.temperature.setValue(0.2)
    s.seed.setValue(123)
    s.context.setValue(2048)
    s.preset_combo.activated.emit(s.preset_combo.findText("Concise"))
    s.flush()
    saved = window.services.chats.get_session(first)
    assert saved.sampling["temperature"] == 0.2 and saved.sampling["seed"] == 123 and saved.context_length == 2048
    assert saved.system_prompt.startswith("Answer in as few words")
    second = window.chat.new_session().id  # starts from the current chat's settings
    s.temperature.setValue(1.3)
    s.flush()
    window.chat.select(first)
    assert s.temperature.value() == 0.2
    window.chat.select(second)
    assert s.temperature.value() == 1.3

    # a user preset, saved through the name dialog
    s.system_edit.setPlainText("Talk like a pirate.")
    click(qtbot, window, "savePresetButton")
    dialog = s.findChild(QInputDialog, "presetNameDialog")
    dialog.setTextValue("Pirate")
    dialog.accept()
    assert s.preset_combo.findText("Pirate  (yours)") > 0


def test_export_and_import(window, qtbot, tmp_path):
    page = window.chat_page
    session_id = seed_branching_chat(window.services.chats, "Squares & more")
    window.chat.select(session_id)
    markdown = window.chat.export(tmp_path / "chat.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Squares & more") and "squares = [n * n" in markdown and "_(cancelled)_" in markdown
    data = json.loads(window.chat.export(tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert data["format"] == "ember-chat" and data["version"] == 1 and len(data["messages"]) == 5
    window.chat.import_file(tmp_path / "chat.json")
    assert page.sessions.model.rowCount() == 2
    imported = window.chat.session_id
    assert imported != session_id and contents(page)[1] == CODE_REPLY
    assert len(window.services.chats.messages(imported)) == 5

    (tmp_path / "other.json").write_text('{"hello": 1}')
    window.chat.import_file(tmp_path / "other.json")
    assert window.error_bar.isVisible() and "not an Ember chat" in window.error_bar.message.text()
    assert page.sessions.model.rowCount() == 2


def test_a_thousand_message_chat_opens_at_the_bottom_and_scrolls(window, qtbot):
    page = window.chat_page
    session_id = seed_long_chat(window.services.chats, 1000)
    window.chat.select(session_id)
    assert page.message_model.rowCount() == 1000
    bar = page.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=10000)
    for value in range(bar.maximum(), 0, -max(1, bar.maximum() // 20)):
        bar.setValue(value)
        QApplication.processEvents()
    bar.setValue(0)
    QApplication.processEvents()
    assert page.view.indexAt(page.view.viewport().rect().topLeft()).row() == 0


def test_open_a_gguf_file_adds_it_to_the_picker(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    from tests.support.gguf_files import write_tiny_model

    path = write_tiny_model(tmp_path / "tiny-model.Q8_0.gguf")
    bar = window.chat_page.model_bar
    qtbot.waitUntil(lambda: bar.models.rowCount() >= 1, timeout=20000)  # the library scan after first paint
    click(qtbot, window, "openModelButton")
    dialog = window.findChild(QFileDialog, "openModelDialog")
    with qtbot.waitSignal(window.library.opened, timeout=20000):
        dialog.fileSelected.emit(str(path))
    dialog.close()
    assert bar.entry().path == str(path.resolve()) and bar.entry().source == "added"
    assert "tiny-model.Q8_0.gguf" in bar.combo.currentText()

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model at all" * 10)
    with qtbot.waitSignal(window.library.failed, timeout=20000):
        window.library.open_file(str(broken))
    assert window.error_bar.isVisible() and "GGUF" in window.error_bar.message.text() + window.error_bar.hint.text()
    assert bar.entry().path == str(path.resolve())  # the picker keeps the good one


def test_tab_order_goes_through_the_page_in_reading_order(window):
    window.chat.new_session()
    order, widget = [], window.nav.nextInFocusChain()
    while widget is not window.nav and len(order) < 500:
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus and widget.isVisible() and not widget.objectName().startswith(
                "qt_"):
            order.append(widget.objectName())
        widget = widget.nextInFocusChain()
    expected = ["chatSearch", "newChatButton", "sessionList", "modelCombo", "loadModelButton", "promptEdit",
                "sendButton", "presetCombo", "systemPromptEdit", "temperatureSpin", "contextLengthSpin"]
    positions = [order.index(name) for name in expected]
    assert positions == sorted(positions), order


def test_a_refused_switch_while_a_reply_streams_keeps_the_list_on_the_open_chat(window, qtbot):
    page, repo = window.chat_page, window.services.chats
    other = repo.create_session("Other").id
    shown = repo.create_session("Shown").id
    window.chat.select(shown)
    window.chat.busy = lambda: True  # as while a reply streams
    sessions = page.sessions
    qtbot.mouseClick(sessions.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=sessions.list.visualRect(sessions.model.index(sessions.model.row_of(other))).center())
    assert window.chat.session_id == shown
    shown_row = sessions.model.row_of(shown)
    qtbot.waitUntil(lambda: sessions.list.currentIndex().row() == shown_row, timeout=3000)
    assert [i.row() for i in sessions.list.selectionModel().selectedIndexes()] == [shown_row]
