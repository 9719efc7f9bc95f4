"""Runs the real app (app.application.run_window) and drives it from inside, for tests that need a
separate process: `python app_driver.py stream` loads the starter model, starts a long reply and prints
STREAMING once text is being saved; `python app_driver.py quit` opens the window and closes it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer

import app.application as application
from app.views import main_window

MODE = sys.argv[1]
_original_init = main_window.MainWindow.__init__


def driven_init(self, services) -> None:
    _original_init(self, services)
    page = self.chat_page
    if MODE == "quit":
        QTimer.singleShot(300, self.close)
        return
    page.settings.max_tokens.setValue(3000)
    page.settings.context.setValue(4096)

    def send(_host) -> None:
        page.prompt_edit.setPlainText("Write a very long story about a lighthouse keeper.")
        page.send()

    seen = []

    def on_text(*_args) -> None:
        seen.append(1)
        if len(seen) == 1:
            QTimer.singleShot(1500, lambda: print("STREAMING", flush=True))

    self.models.loaded.connect(send)
    self.chat.text_arrived.connect(on_text)
    QTimer.singleShot(100, page.load_selected_model)


main_window.MainWindow.__init__ = driven_init
sys.exit(application.run_window())
