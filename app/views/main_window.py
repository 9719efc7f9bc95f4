"""The main window: navigation, pages, status bar, shortcuts, readable errors, remembered geometry."""

from __future__ import annotations

import gc
import importlib.util
import logging

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.chat_controller import ChatController
from app.controllers.model_controller import ModelController
from app.controllers.reply_controller import ReplyController
from app.controllers.status_controller import StatusController
from app.services import Services
from app.views.chat_page import ChatPage
from app.views.message_bar import MessageBar
from app.views.widgets import named
from app.workers import WorkerRunner
from engine.errors import EmberError

log = logging.getLogger(__name__)

PAGES = ["Chat", "Models", "Documents", "Fine-tune", "Settings"]
COMING = {
    "Models": "Search and download models from Hugging Face: coming. Until then, open a GGUF file from the Chat page.",
    "Documents": "Answers from your own files, with citations: coming.",
    "Fine-tune": "Train a LoRA adapter on your own data: coming.",
    "Settings": "App-wide settings: coming. Each chat's own settings are on the right of the Chat page.",
}


def slug(name: str) -> str:
    return name.lower().replace("-", "")


def freeze_startup_objects() -> None:
    """Move everything made so far (modules, widgets, wrappers) out of the garbage collector's sight.

    They live as long as the window, yet every full collection walked them all: measured, a 44 ms UI
    stall at the end of a download was one such collection. Called once every page is built."""
    gc.freeze()


def page_module(name: str) -> str:
    return f"app.views.{slug(name)}_page"


def placeholder(name: str, text: str) -> QWidget:
    page = QWidget()
    page.setObjectName(f"{slug(name)}Page")
    layout = QVBoxLayout(page)
    label = named(QLabel(text), f"{slug(name)}ComingLabel", f"{name} page")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    layout.addWidget(label)
    return page


class MainWindow(QMainWindow):
    first_painted = Signal()

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.setObjectName("mainWindow")
        self.setWindowTitle("Ember")
        self.setAccessibleName("Ember")
        self._painted = False
        self._closed = False
        self.last_error: EmberError | None = None
        self.runner = WorkerRunner(services.log_path, self)
        self.chat = ChatController(services, self)
        self.replies = ReplyController(services, self.runner, self.chat, self)
        self.chat.busy = lambda: self.replies.generating
        self.models = ModelController(services, self.runner, self)
        self.status = StatusController(services, self)

        self.nav = named(QListWidget(), "navigation", "Pages")
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(120)
        self.nav.setStyleSheet(
            "QListWidget#navigation { border: none; background: transparent; }"
            "QListWidget#navigation::item { padding: 7px 10px; border-radius: 4px; }"
            "QListWidget#navigation::item:selected { background: palette(highlight); color: palette(highlighted-text); }")
        self.stack = QStackedWidget()
        self.chat_page = ChatPage(self.chat, self.replies, self.models)
        self.stack.addWidget(self.chat_page)
        self._pending_pages: dict[int, str] = {}  # built after the first paint (their imports may be heavy)
        for row, name in enumerate(PAGES[1:], start=1):
            built_later = importlib.util.find_spec(page_module(name)) is not None
            self.stack.addWidget(placeholder(name, "Opening…" if built_later else COMING[name]))
            if built_later:
                self._pending_pages[row] = name
        self.nav.currentRowChanged.connect(self._show_page)
        self.nav.setCurrentRow(0)
        self.error_bar = MessageBar("error")
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.error_bar)
        row = QHBoxLayout()
        row.setContentsMargins(4, 4, 0, 0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        outer.addLayout(row, 1)
        self.setCentralWidget(central)
        central.installEventFilter(self)
        self._status_bar()
        self._shortcuts()
        self.chat_page.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.chat_page.error_shown.connect(self.show_error)
        self.setTabOrder(self.nav, self.chat_page.sessions.search)
        self._restore_geometry()
        self.first_painted.connect(self._after_first_paint)

    def _after_first_paint(self) -> None:
        """Work that may import heavy modules (inspecting GGUF files imports gguf) waits for the window."""
        if self._closed:
            return
        self.models.scan()
        self.models.probe_hardware()
        self._build_pages()

    # --- the other pages: built by the issues that own them, after the first paint -----------------
    def _build_pages(self) -> None:
        """Import each page's module in a worker, then build the page here (widgets live on the UI thread)."""
        for row, name in list(self._pending_pages.items()):
            self.runner.run(importlib.import_module, page_module(name), name=f"import-{slug(name)}",
                            on_result=lambda _module, r=row: self._build_page(r),
                            on_error=lambda error, r=row: self._page_failed(r, error))

    def _show_page(self, row: int) -> None:
        self._build_page(row)  # at once if the user gets there first
        self.stack.setCurrentIndex(row)

    def _build_page(self, row: int) -> None:
        name = self._pending_pages.pop(row, None)
        if name is None or self._closed:
            return
        try:
            module = importlib.import_module(page_module(name))
            page = getattr(module, f"{name.replace('-', '')}Page")(self.services, self)
        except Exception:  # another page's bug must not break the window
            log.exception("could not build the %s page", name)
            self._pending_pages[row] = name
            self._page_failed(row)
            return
        for signal_name in ("library_changed", "models_changed"):
            if hasattr(page, signal_name):
                getattr(page, signal_name).connect(self.models.scan)
        old = self.stack.widget(row)
        current = self.stack.currentIndex()
        self.stack.insertWidget(row, page)
        self.stack.removeWidget(old)
        old.deleteLater()
        self.stack.setCurrentIndex(current)
        if not self._pending_pages:
            freeze_startup_objects()

    def _page_failed(self, row: int, _error=None) -> None:
        name = self._pending_pages.pop(row, None) or PAGES[row]
        label = self.stack.widget(row).findChild(QLabel, f"{slug(name)}ComingLabel")
        if label is not None:
            label.setText(f"The {name} page could not be opened. The details are in {self.services.log_path}.")

    def _status_bar(self) -> None:
        bar = self.statusBar()
        self.model_status = named(QLabel("No model loaded"), "statusModel", "Loaded model")
        self.backend_status = named(QLabel("Backend: CPU"), "statusBackend", "Backend")
        self.memory_status = named(QLabel("Memory:"), "statusMemory", "Memory used")
        for label in (self.model_status, self.backend_status, self.memory_status):
            bar.addPermanentWidget(label)
        s = self.status
        s.model_text.connect(self.model_status.setText)
        s.backend_text.connect(self.backend_status.setText)
        s.memory_text.connect(self.memory_status.setText)
        self.models.hardware_known.connect(s.set_hardware)
        self.models.loaded.connect(lambda _host: s.refresh_model())
        self.models.unloaded.connect(s.refresh_model)
        s.refresh_model()

    def _shortcuts(self) -> None:
        page = self.chat_page
        for keys, name, action in (
            ("Ctrl+N", "newChatShortcut", self._new_chat),
            ("Ctrl+F", "searchShortcut", self._search),
            ("Escape", "stopShortcut", lambda: self.replies.stop()),
            ("Ctrl+E", "exportShortcut", lambda: page.sessions.export_dialog()),
            ("Ctrl+Return", "sendShortcut", lambda: page.composer.submit()),
            ("Ctrl+Enter", "sendKeypadShortcut", lambda: page.composer.submit()),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setObjectName(name)
            shortcut.activated.connect(action)

    def _go_to_chat(self) -> None:
        self.nav.setCurrentRow(0)

    def _new_chat(self) -> None:
        self._go_to_chat()
        self.chat_page.new_chat()

    def _search(self) -> None:
        self._go_to_chat()
        self.chat_page.focus_search()

    def show_error(self, error) -> None:
        """Say what happened and what to do, in the window; never a traceback; nothing blocks."""
        if error is None:
            return
        if not isinstance(error, EmberError):
            error = EmberError(str(error))
        self.last_error = error
        self.error_bar.show_message(error.message, error.hint or "", error.log_path)

    # --- geometry and closing -----------------------------------------------------------------
    def _settings(self) -> QSettings:
        return QSettings(str(self.services.paths.window_state), QSettings.Format.IniFormat)

    def _restore_geometry(self) -> None:
        settings = self._settings()
        geometry = settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = self.screen().availableGeometry()
            self.resize(min(1320, screen.width() - 40), min(860, screen.height() - 60))
        splitter = settings.value("chatSplitter")
        if splitter is not None:
            self.chat_page.splitter.restoreState(splitter)

    def eventFilter(self, watched, event) -> bool:
        if not self._painted and event.type() == QEvent.Type.Paint:
            self._painted = True
            QTimer.singleShot(0, self, self.first_painted.emit)  # after the rest of this frame is painted
        return False

    def closeEvent(self, event) -> None:
        if self._closed:
            return super().closeEvent(event)
        self._closed = True
        settings = self._settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("chatSplitter", self.chat_page.splitter.saveState())
        settings.sync()
        self.chat_page.settings.flush()
        self.replies.stop()
        self.models.cancel_load()
        self.runner.shutdown()
        for row in range(self.stack.count()):  # pages that keep work for the next start (downloads)
            page = self.stack.widget(row)
            if hasattr(page, "window_closed"):
                page.window_closed()
        self.services.stop_model()
        for timer in self.findChildren(QTimer):  # debounced saves and counts must not run on a closed home
            timer.stop()
        super().closeEvent(event)
