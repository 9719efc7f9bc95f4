"""Helpers for driving the real window with the real SmolLM2 host."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QPlainTextEdit

from app.testing import helpers
from app.testing.helpers import STARTER_CONTEXT as CONTEXT
from app.testing.helpers import close_window
from app.testing.helpers import open_window as open_ember_window
from app.views.main_window import MainWindow


@pytest.fixture
def open_window(qtbot, ember_home):
    """Opens windows on the test's home (threads=1); closes them, stopping their hosts, at the end."""
    opened = []

    def opener() -> MainWindow:
        window = open_ember_window(ember_home, threads=1)
        qtbot.addWidget(window)
        opened.append(window)
        return window

    yield opener
    for window in opened:
        close_window(window)


def load_model(qtbot, window: MainWindow, context: int = CONTEXT, expect_source: str = "starter") -> None:
    """Press Load on the model chosen in the picker (the starter model, unless the test opened another), as
    a user would."""
    helpers.load_model(window, expect_source, context)


def type_and_send(qtbot, window: MainWindow, text: str, *, wait: bool = True) -> None:
    """Type and press Enter; with `wait`, until the reply has ended (and fail if none came)."""
    if wait:
        helpers.send_and_wait_reply(window, text)
        return
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    prompt.clear()
    qtbot.keyClicks(prompt, text)
    qtbot.keyClick(prompt, Qt.Key.Key_Return)


def click(qtbot, window: MainWindow, name: str) -> None:
    button = window.findChild(QAbstractButton, name)
    assert button is not None, name
    assert button.isEnabled(), f"{name} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def rows(window: MainWindow):
    model = window.chat_page.message_model
    return [model.item_at(r) for r in range(model.rowCount())]


def set_sampling(window: MainWindow, *, max_tokens: int, temperature: float = 0.0, seed: int = 7) -> None:
    s = window.chat_page.settings
    s.max_tokens.setValue(max_tokens)
    s.temperature.setValue(temperature)
    s.seed.setValue(seed)
    s.flush()
