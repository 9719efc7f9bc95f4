"""Helpers for driving the real window with the real SmolLM2 host."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QPlainTextEdit

from app.services import Services
from app.views.main_window import MainWindow
from engine.paths import EmberPaths
from tests.support.welcome import skip_welcome

CONTEXT = 1024


@pytest.fixture
def open_window(qtbot, ember_home):
    """Opens windows on the test's home (threads=1); closes them, stopping their hosts, at the end."""
    opened = []

    def opener() -> MainWindow:
        skip_welcome(ember_home)
        services = Services(EmberPaths(ember_home))
        window = MainWindow(services)
        window.runtime.threads = 1
        qtbot.addWidget(window)
        window.show()
        opened.append((window, services))
        return window

    yield opener
    for window, services in opened:
        window.close()
        services.close()


def load_model(qtbot, window: MainWindow, context: int = CONTEXT, expect_source: str = "starter") -> None:
    """Press Load on the model chosen in the picker (the starter model, unless the test opened another), as
    a user would."""
    page = window.chat_page
    qtbot.waitUntil(lambda: page.model_bar.entry() is not None and page.model_bar.entry().source == expect_source,
                    timeout=20000)
    page.settings.context.setValue(context)
    with qtbot.waitSignal(window.runtime.loaded, timeout=90000):
        qtbot.mouseClick(window.findChild(QAbstractButton, "loadModelButton"), Qt.MouseButton.LeftButton)


def type_and_send(qtbot, window: MainWindow, text: str, *, wait: bool = True) -> None:
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    prompt.clear()
    qtbot.keyClicks(prompt, text)
    if not wait:
        qtbot.keyClick(prompt, Qt.Key.Key_Return)
        return
    with qtbot.waitSignal(window.replies.generating_changed, timeout=60000, check_params_cb=lambda on: not on):
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
