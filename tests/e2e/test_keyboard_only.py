"""A chat driven from the keyboard alone: new chat, type, send, stop, switch pages; no mouse event at all.
The stopped reply is announced to assistive technology once."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.testing.helpers import SignalLog, wait_until
from app.views.main_window import PAGES
from tests.e2e.conftest import set_sampling

pytestmark = pytest.mark.timeout(180)

MOUSE_EVENTS = {QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick}


class MouseWatch(QObject):
    """Counts every mouse button event the application delivers."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def eventFilter(self, _watched, event) -> bool:
        self.seen += event.type() in MOUSE_EVENTS
        return False


def press(key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press where the keyboard's focus is, as the user's keyboard would deliver it."""
    QTest.keyClick(QApplication.focusWidget(), key, modifier)


def test_new_chat_type_send_stop_and_switch_pages_with_the_keyboard_only(qtbot, ember_window, smollm2_path):
    window, ctrl = ember_window, Qt.KeyboardModifier.ControlModifier
    mouse = MouseWatch()
    QApplication.instance().installEventFilter(mouse)
    try:
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        qtbot.waitUntil(lambda: window.chat_page.model_bar.entry() is not None, timeout=20000)  # the starter model
        set_sampling(window, max_tokens=1500, temperature=0.8)

        press(Qt.Key.Key_N, ctrl)  # new chat: the message box has the focus
        assert len(window.chat.sessions()) == 1
        assert QApplication.focusWidget() is window.chat_page.composer.prompt
        QTest.keyClicks(QApplication.focusWidget(), "Tell me a long story about the sea.")
        text = SignalLog(window.replies.text_arrived)
        said = SignalLog(window.chat_page.announcer.announced)
        press(Qt.Key.Key_Return)  # sends; with no model loaded, Send loads the chosen one first
        wait_until(lambda: text.calls, timeout=90, what="the reply to start")
        turns = SignalLog(window.replies.generating_changed)
        press(Qt.Key.Key_Escape)  # stops the reply
        wait_until(lambda: (False,) in turns.calls, timeout=30, what="the reply to stop")
        reply = window.services.chats.branch(window.chat.session_id)[-1]
        assert reply.role == "assistant" and reply.status == "cancelled" and reply.content.strip()
        # a screen reader hears the reply once, when it ended, not with each of its streamed frames
        wait_until(lambda: said.calls, timeout=10, what="the reply to be announced")
        assert len(said.calls) == 1 and len(text.calls) >= 1
        assert said.calls == [(f"Reply: {reply.content.strip()} (stopped)",)]

        for row in (1, 2, 3, 0):  # Ctrl+2, Ctrl+3, Ctrl+4, Ctrl+1
            press(getattr(Qt.Key, f"Key_{row + 1}"), ctrl)
            assert window.nav.currentRow() == row and window.nav.currentItem().text() == PAGES[row]
            assert window.stack.currentIndex() == row
    finally:
        QApplication.instance().removeEventFilter(mouse)
    assert mouse.seen == 0
