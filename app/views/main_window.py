"""The main window: navigation, pages, status bar, shortcuts, readable errors."""

from __future__ import annotations

import importlib

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.chat_controller import ChatController
from app.controllers.model_controller import ModelController
from app.services import Services
from app.views.chat_page import ChatPage
from app.views.widgets import named
from app.workers import WorkerPools
from engine.errors import EmberError

PAGES = ["Chat", "Models", "Documents", "Fine-tune", "Settings"]
COMING = {
    "Models": "Search and download models — coming soon. Until then, open a GGUF file from the Chat page.",
    "Documents": "Answers from your own files, with citations — coming soon.",
    "Fine-tune": "Train a LoRA adapter on your documents — coming soon.",
    "Settings": "App-wide settings — coming soon. Each chat's settings are on the Chat page.",
}


def placeholder(name: str) -> QWidget:
    page = QWidget()
    page.setObjectName(f"{name.lower().replace('-', '')}Page")
    layout = QVBoxLayout(page)
    label = named(QLabel(COMING[name]), f"{name.lower().replace('-', '')}ComingLabel", f"{name} page")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    layout.addWidget(label)
    return page


class MainWindow(QMainWindow):
    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.setObjectName("mainWindow")
        self.setWindowTitle("Ember")
        self.pools = WorkerPools()
        self.models = ModelController(services, self.pools, self)
        self.chat = ChatController(services, self.pools, self)

        self.nav = named(QListWidget(), "navigation", "Pages")
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(130)
        self.stack = QStackedWidget()
        self.chat_page = ChatPage(self.chat, self.models)
        self.stack.addWidget(self.chat_page)
        for name in PAGES[1:]:
            self.stack.addWidget(self._page(name))
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setCurrentRow(0)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.nav)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.model_status = named(QLabel("No model"), "statusModel", "Loaded model")
        self.backend_status = named(QLabel(""), "statusBackend", "Backend")
        self.memory_status = named(QLabel(""), "statusMemory", "Memory used by the model")
        self.statusBar().addPermanentWidget(self.model_status)
        self.statusBar().addPermanentWidget(self.backend_status)
        self.statusBar().addPermanentWidget(self.memory_status)
        self._memory_timer = QTimer(self)
        self._memory_timer.setInterval(2000)
        self._memory_timer.timeout.connect(self._show_memory)
        self.chat_page.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.chat_page.error_shown.connect(self.show_error)
        self.models.loaded.connect(self._on_model_loaded)
        self.models.unloaded.connect(self._on_model_unloaded)
        self._shortcuts()
        self._restore_geometry()

    def _page(self, name: str) -> QWidget:
        module_name = f"app.views.{name.lower().replace('-', '')}_page"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return placeholder(name)
        return getattr(module, f"{name.replace('-', '')}Page")(self.services, self.pools, self)

    def _shortcuts(self) -> None:
        page = self.chat_page
        for keys, action in (
            ("Ctrl+N", self.chat.new_session), ("Ctrl+F", page.focus_search), ("Escape", self.chat.stop),
            ("Ctrl+E", page.settings.export_dialog), ("Ctrl+Return", page.send),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.activated.connect(action)

    def _on_model_loaded(self, host) -> None:
        entry = self.services.model.entry
        self.model_status.setText(entry.name if entry else "model")
        layers = host.info.get("gpu_layers", 0)
        from engine.runtime.hardware import probe_hardware

        backend = probe_hardware(check_offload=False).backend if layers else "CPU"
        self.backend_status.setText(f"{backend} · GPU layers {layers} · threads {host.info.get('threads')}")
        self._show_memory()
        self._memory_timer.start()

    def _show_memory(self) -> None:
        host = self.services.model.host
        used = host.memory_used() if host is not None else None
        self.memory_status.setText(f"model memory {used / 2**20:,.0f} MB" if used else "")

    def _on_model_unloaded(self) -> None:
        self.model_status.setText("No model")
        self.backend_status.setText("")
        self.memory_status.setText("")
        self._memory_timer.stop()

    def show_error(self, error) -> None:
        if error is None:
            return
        if not isinstance(error, EmberError):
            error = EmberError(str(error))
        self.statusBar().showMessage(error.message, 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Ember", error.message, parent=self)
        box.setObjectName("errorDialog")
        details = error.hint or ""
        if error.log_path:
            details += f"\n\nLog: {error.log_path}"
        box.setInformativeText(details)
        box.open()  # not modal-blocking: the window stays usable
        self.last_error = error

    def _settings(self) -> QSettings:
        return QSettings(str(self.services.paths.window_state), QSettings.Format.IniFormat)

    def _restore_geometry(self) -> None:
        geometry = self._settings().value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = self.screen().availableGeometry()
            self.resize(min(1280, screen.width() - 40), min(820, screen.height() - 60))

    def closeEvent(self, event) -> None:
        self._settings().setValue("geometry", self.saveGeometry())
        self.chat_page.settings.flush()
        self.chat.stop()
        self.models.cancel_load()
        self.pools.cancel_all()
        self.pools.wait()
        self.models.unload()
        self.pools.wait()
        super().closeEvent(event)
