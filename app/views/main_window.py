"""The main window: navigation, pages, status bar, shortcuts, readable errors, remembered geometry.

The window builds the shared controllers (window_controllers.py) and hands them to each page; a page
only emits what the user asked for (`status_message`, `error_shown`, `open_in_chat`) and the window
connects those here. Pages other than Chat are listed in PAGES with the module that builds them; they
are built after the first paint (their imports may be heavy), or at once when first shown.
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.welcome_controller import WelcomeController
from app.controllers.window_controllers import build_controllers
from app.services import Services
from app.views.chat_page import ChatPage
from app.views.conversation_view import MessageActions
from app.views.icons import themed_icon
from app.views.message_bar import MessageBar
from app.views.shortcuts_dialog import ShortcutsDialog
from app.views.welcome_panel import WelcomePanel
from app.views.widgets import named
from app.workers import WorkerRunner
from engine.errors import EmberError, InvalidInput

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PageSpec:
    """A page after Chat: its name in the navigation and the module whose `build_page(controllers, parent)`
    makes it. The page may have signals `status_message(str)`, `error_shown(object)` and
    `open_in_chat(LibraryEntry)`, and a method `window_closed()` (the window is closing, its jobs
    stopped); the window connects the ones it has, and nothing else."""

    name: str
    module: str


PAGES = ["Chat", "Models", "Documents", "Fine-tune", "Server", "Settings"]
PAGE_ICONS = {"Chat": "chat", "Models": "models", "Documents": "documents", "Fine-tune": "finetune",
              "Server": "server", "Settings": "settings"}
LATER_PAGES = [PageSpec("Models", "app.views.models_page"), PageSpec("Documents", "app.views.documents_page"),
               PageSpec("Fine-tune", "app.views.finetune_page"), PageSpec("Server", "app.views.server_page"),
               PageSpec("Settings", "app.views.settings_page")]


def slug(name: str) -> str:
    return name.lower().replace("-", "")


@dataclass(frozen=True)
class Shortcut:
    """A key of the whole window: what it calls, and what Help → Keyboard shortcuts says it does."""

    keys: str  # as QKeySequence reads it
    object_name: str  # of its QShortcut
    what: str
    action: Callable[[MainWindow], object]


SHORTCUTS = (
    Shortcut("Ctrl+N", "newChatShortcut", "New chat", lambda w: w.new_chat()),
    Shortcut("Ctrl+F", "searchShortcut", "Search every chat", lambda w: w.search_chats()),
    Shortcut("Escape", "stopShortcut", "Stop the reply", lambda w: w.replies.stop()),
    Shortcut("Ctrl+E", "exportShortcut", "Export the chat", lambda w: w.chat_page.sessions.export_dialog()),
    Shortcut("Ctrl+Return", "sendShortcut", "Send the message", lambda w: w.chat_page.composer.submit()),
    Shortcut("Ctrl+Enter", "sendKeypadShortcut", "Send the message (keypad Enter)",
             lambda w: w.chat_page.composer.submit()),
    *(Shortcut(f"Ctrl+{row + 1}", f"{slug(name)}PageShortcut", f"Show the {name} page",
               lambda w, row=row: w.show_page(row)) for row, name in enumerate(PAGES)),
    Shortcut("F1", "shortcutsHelpShortcut", "List the keyboard shortcuts", lambda w: w.show_shortcuts()),
)


def freeze_startup_objects() -> None:
    """Move everything made so far (modules, widgets, wrappers) out of the garbage collector's sight.

    They live as long as the window, yet every full collection walked them all: measured, a 44 ms UI
    stall at the end of a download was one such collection. Called once every page is built."""
    gc.freeze()


def placeholder(name: str, text: str) -> QWidget:
    """What a page shows until it is built (or when it could not be built: then where the log is)."""
    page = QWidget()
    page.setObjectName(f"{slug(name)}Placeholder")
    layout = QVBoxLayout(page)
    label = named(QLabel(text), f"{slug(name)}PlaceholderLabel", f"{name} page")
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
        self.controllers = c = build_controllers(services, self.runner, self)
        self.library, self.runtime, self.chat, self.replies, self.status = (
            c.library, c.runtime, c.chat, c.replies, c.status)

        self.nav = named(QListWidget(), "navigation", "Pages")
        self.nav.addItems(PAGES)
        self._paint_nav_icons()
        self.nav.setFixedWidth(132)
        self.nav.setStyleSheet(
            "QListWidget#navigation { border: none; background: transparent; }"
            "QListWidget#navigation::item { padding: 7px 10px; border-radius: 4px; }"
            "QListWidget#navigation::item:selected { background: palette(highlight); color: palette(highlighted-text); }")
        self.stack = QStackedWidget()
        self.chat_page = ChatPage(self.chat, self.replies, self.runtime, self.library, sources=c.sources)
        self.stack.addWidget(self.chat_page)
        self.welcome = WelcomeController(services, self.runner, self.runtime, self.library, c.downloads, self)
        self.welcome_panel = None
        if self.welcome.wanted():
            self.welcome_panel = WelcomePanel(self.welcome)
            self.welcome_panel.open_file_requested.connect(self.chat_page.model_bar.open_dialog)
            self.chat_page.show_welcome(self.welcome_panel)
        self._pending_pages: dict[int, PageSpec] = {}  # built after the first paint (their imports may be heavy)
        for row, spec in enumerate(LATER_PAGES, start=1):
            self.stack.addWidget(placeholder(spec.name, "Opening…"))
            self._pending_pages[row] = spec
        self.nav.currentRowChanged.connect(self._show_page)
        self.nav.setCurrentRow(0)
        self.error_bar = MessageBar("error")
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.error_bar)
        self.recovery_bar = MessageBar("recovery")  # ember.db was damaged at this start: what came back
        outer.addWidget(self.recovery_bar)
        report = getattr(services, "recovery", None)
        notes = list(getattr(services, "settings_notes", None) or [])  # a settings file kept aside at this start
        if report is not None or notes:
            what = "your chats" if report is not None else "your settings"
            self.recovery_bar.show_message(" ".join(([report.summary()] if report is not None else []) + notes),
                                           f"Check {what}. Nothing was deleted: the files set aside stay in "
                                           f"{services.paths.home}.")
        row = QHBoxLayout()
        row.setContentsMargins(4, 4, 0, 0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        outer.addLayout(row, 1)
        self.setCentralWidget(central)
        central.installEventFilter(self)
        self._status_bar()
        self._shortcuts()
        self._help_menu()
        self.chat_page.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.chat_page.error_shown.connect(self.show_error)
        self.setTabOrder(self.nav, self.chat_page.sessions.search)
        self._restore_geometry()
        # queued: every listener of first_painted runs before the background work starts
        self.first_painted.connect(lambda: QTimer.singleShot(0, self, self._after_first_paint))

    def _after_first_paint(self) -> None:
        """Work that may import heavy modules (inspecting GGUF files imports gguf) waits for the window."""
        if self._closed:
            return
        self.library.scan()
        self.runtime.probe_hardware()
        self.runtime.remote_problems.connect(lambda lines: self.statusBar().showMessage("; ".join(lines), 15000))
        self.runtime.refresh_remote()
        if self.welcome_panel is not None:
            self.welcome.start()
        self.controllers.downloads.resume_unfinished()
        self._build_pages()

    # --- the other pages: built after the first paint -------------------------------------------
    def _build_pages(self) -> None:
        """Import each page's module in a worker, then build the page here (widgets live on the UI thread)."""
        for row, spec in list(self._pending_pages.items()):
            self.runner.run(importlib.import_module, spec.module, name=f"import-{slug(spec.name)}",
                            on_result=lambda _module, r=row: self._build_page(r),
                            on_error=lambda error, r=row: self._page_failed(r, error))

    def _show_page(self, row: int) -> None:
        self._build_page(row)  # at once if the user gets there first
        self.stack.setCurrentIndex(row)

    def _build_page(self, row: int) -> None:
        spec = self._pending_pages.pop(row, None)
        if spec is None or self._closed:
            return
        try:
            page = importlib.import_module(spec.module).build_page(self.controllers, self)
        except Exception:  # another page's bug must not break the window
            log.exception("could not build the %s page", spec.name)
            self._pending_pages[row] = spec
            self._page_failed(row)
            return
        self._connect_page(page)
        old = self.stack.widget(row)
        current = self.stack.currentIndex()
        self.stack.insertWidget(row, page)
        self.stack.removeWidget(old)
        old.deleteLater()
        self.stack.setCurrentIndex(current)
        if not self._pending_pages:
            freeze_startup_objects()

    def _connect_page(self, page: QWidget) -> None:
        """What a page asks of the window, as declared in PageSpec."""
        if hasattr(page, "status_message"):
            page.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        if hasattr(page, "error_shown"):
            page.error_shown.connect(self.show_error)
        if hasattr(page, "open_in_chat"):
            page.open_in_chat.connect(self._open_in_chat)
        if hasattr(page, "open_adapter"):
            page.open_adapter.connect(self._open_adapter)

    def _open_in_chat(self, entry) -> None:
        """Load a model for chatting and show the Chat page."""
        self.runtime.load(entry)
        self._go_to_chat()

    def _open_adapter(self, adapter, scale: float) -> None:
        """A new chat that answers with a fine-tuned adapter, on the model it was trained on."""
        base = (adapter.record.get("base_model") or {}).get("path")
        loaded = self.runtime.chat_model
        if base and (loaded is None or Path(loaded.path).resolve() != Path(base).resolve()):
            entry = self.library.entry(base)
            if entry is None:
                self.show_error(InvalidInput(f"The adapter's base model {Path(base).name} is not in the library.",
                                             "Add that GGUF file on the Models page, then open the adapter again."))
                return
            self.runtime.load(entry)
        if self.chat.new_session_with_adapter(str(adapter.gguf), scale, f"Chat with {adapter.name}") is not None:
            self._go_to_chat()

    def _page_failed(self, row: int, _error=None) -> None:
        spec = self._pending_pages.pop(row, None) or LATER_PAGES[row - 1]
        label = self.stack.widget(row).findChild(QLabel, f"{slug(spec.name)}PlaceholderLabel")
        if label is not None:
            label.setText(f"The {spec.name} page could not be opened. The details are in {self.services.log_path}.")

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
        self.runtime.hardware_known.connect(s.set_hardware)
        self.runtime.loaded.connect(lambda _loaded: s.refresh_model())
        self.runtime.unloaded.connect(s.refresh_model)
        s.refresh_model()

    def _shortcuts(self) -> None:
        for shortcut in SHORTCUTS:
            key = QShortcut(QKeySequence(shortcut.keys), self)
            key.setObjectName(shortcut.object_name)
            key.activated.connect(lambda action=shortcut.action: action(self))

    def _help_menu(self) -> None:
        menu = self.menuBar().addMenu("&Help")
        menu.setObjectName("helpMenu")
        action = menu.addAction("&Keyboard shortcuts")
        action.setObjectName("keyboardShortcutsAction")
        action.triggered.connect(self.show_shortcuts)

    def show_shortcuts(self) -> None:
        """Help → Keyboard shortcuts: the window's table below and the message actions' own."""
        window_keys = [(s.keys, s.what) for s in SHORTCUTS]
        message_keys = [(keys, what) for _name, _text, _object, what, keys in MessageActions.ACTIONS if keys]
        dialog = ShortcutsDialog(window_keys, message_keys, self)
        dialog.show()

    def _paint_nav_icons(self) -> None:
        """Each page's icon in the palette's text colour (again when the theme changes)."""
        color = self.palette().color(QPalette.ColorRole.WindowText)
        for row, name in enumerate(PAGES):
            self.nav.item(row).setIcon(themed_icon(PAGE_ICONS[name], color))

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._paint_nav_icons()
        super().changeEvent(event)

    def show_page(self, row: int) -> None:
        self.nav.setCurrentRow(row)
        self.nav.setFocus()

    def _go_to_chat(self) -> None:
        self.nav.setCurrentRow(0)

    def new_chat(self) -> None:
        self._go_to_chat()
        self.chat_page.new_chat()

    def search_chats(self) -> None:
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
        self.runtime.cancel_load()
        self.runner.shutdown()
        self.controllers.downloads.requeue_interrupted()  # what was cut off continues at the next start
        self.controllers.sources.close()  # the document child that draws cited pages
        for row in range(self.stack.count()):  # pages with work of their own to end
            page = self.stack.widget(row)
            if hasattr(page, "window_closed"):
                page.window_closed()
        self.runtime.stop_all()
        for timer in self.findChildren(QTimer):  # debounced saves and counts must not run on a closed home
            timer.stop()
        super().closeEvent(event)
