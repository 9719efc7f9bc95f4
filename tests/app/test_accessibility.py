"""The accessibility walk: on every page and tab, each widget that can take the focus has a name that Qt's
accessibility layer reports to a screen reader. And Help → Keyboard shortcuts lists the window's keys."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QPushButton, QSpinBox

from app.testing.accessibility import accessible_name, describe, every_page_and_tab, unnamed_focusable
from app.views.main_window import PAGES, SHORTCUTS
from app.views.shortcuts_dialog import ShortcutsDialog, shown_keys
from tests.app.conftest import seed_branching_chat
from tests.app.test_documents_page import add_embedding_model, make_collection, open_documents


def test_every_focusable_widget_on_every_page_and_tab_has_an_accessible_name(qtbot, window, minilm_gguf):
    window.chat.select(seed_branching_chat(window.services.chats))  # the conversation and its actions show
    add_embedding_model(qtbot, window, minilm_gguf)
    make_collection(qtbot, open_documents(qtbot, window), "Notes", minilm_gguf)  # the collection's controls show
    visited, judged, unnamed = [], set(), {}
    for where in every_page_and_tab(window):
        visited.append(where)
        judged.update(w for w in window.findChildren(QPushButton) if w.isVisible())
        for widget in unnamed_focusable(window):
            unnamed.setdefault(describe(widget), where)
    window.show_shortcuts()
    dialog = window.findChild(ShortcutsDialog, "shortcutsDialog")
    qtbot.waitExposed(dialog)
    unnamed.update({describe(w): "Keyboard shortcuts" for w in unnamed_focusable(dialog)})
    assert [where for where in visited if "›" not in where] == PAGES and len(visited) >= 14  # and their tabs
    assert len(judged) >= 40  # the walk saw the pages' controls
    assert unnamed == {}


def test_the_walk_finds_a_control_without_a_name(qtbot, window):
    icon_only = QPushButton(window.chat_page)  # no text, no accessible name: a screen reader says "button"
    spin = QSpinBox(window.chat_page)
    spin.setAccessibleName("Copies")
    for widget in (icon_only, spin):
        widget.show()
    assert icon_only in unnamed_focusable(window) and spin not in unnamed_focusable(window)
    assert spin.lineEdit() not in unnamed_focusable(window)  # it hands its focus to the spin box
    assert accessible_name(window.chat_page.composer.send_button) == "Send"


def test_help_lists_the_keyboard_shortcuts_from_the_window_table(qtbot, window):
    window.findChild(QAction, "keyboardShortcutsAction").trigger()
    dialog = window.findChild(ShortcutsDialog, "shortcutsDialog")
    assert dialog is not None and dialog.isVisible()
    rows = dialog.rows()
    assert [(keys, what) for keys, what, where in rows if where == "Anywhere"] == [
        (shown_keys(s.keys), s.what) for s in SHORTCUTS]
    assert ("Ctrl+R", "Regenerate reply", "The selected message") in rows
    assert {"Ctrl+N", "Esc", "Ctrl+2", "F1"} <= {keys for keys, _what, _where in rows}
