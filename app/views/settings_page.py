"""The Settings page: every app-wide choice on one page (engine/preferences.py), plus where Ember keeps
things, the library's extra folders, the server's port and network choice, and what Ember measured
on this machine (kept apart, and forgettable).

Each change is saved when it is made (text after a pause); a value that cannot work is refused with
the reason in the window's error bar and the field shows the saved value again.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.controllers.window_controllers import WindowControllers
from app.views.move_data_row import MoveDataRow
from app.views.theme import apply_choice
from app.views.widgets import named
from engine.config import MACHINE_KEYS, load_settings, update_settings
from engine.errors import EmberError
from engine.preferences import THEMES, Preferences, load_preferences, save_preferences
from engine.progress_text import human_size
from engine.remote.endpoints import Endpoint, list_models, load_endpoints, remove_endpoint, save_endpoint

TEXT_SAVE_MS = 600


def build_page(controllers: WindowControllers, parent=None) -> SettingsPage:
    return SettingsPage(controllers, parent)


class SettingsPage(QScrollArea):
    status_message = Signal(str)
    error_shown = Signal(object)
    saved = Signal(object)  # Preferences, after each change that was kept
    remote_added = Signal(str)  # the name of a remote server that answered and was kept

    def __init__(self, controllers: WindowControllers, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsPage")
        self.setAccessibleName("Settings")
        self.setWidgetResizable(True)
        self.controllers = controllers
        self.paths = controllers.services.paths
        body = QWidget()
        self.setWidget(body)
        layout = QVBoxLayout(body)
        for box in (self._places(), self._models(), self._remote(), self._chats(), self._appearance(), self._server(),
                    self._machine()):
            layout.addWidget(box)
        layout.addStretch(1)
        for field in (self.context, self.gpu_layers, self.threads, self.theme, self.font_size, self.port):
            field.setMaximumWidth(260)  # a number or a word: no need for the page's width
        self._text_timer = QTimer(self)
        self._text_timer.setSingleShot(True)
        self._text_timer.setInterval(TEXT_SAVE_MS)
        self._text_timer.timeout.connect(self._save_texts)
        self._connect()
        self.show_preferences(load_preferences(self.paths))

    # --- the sections ---------------------------------------------------------------------------------
    def _places(self) -> QGroupBox:
        box = QGroupBox("Where Ember keeps things")
        form = QFormLayout(box)
        for label, path, name in (("Data (chats, documents' index)", self.paths.home, "dataFolder"),
                                  ("Downloaded models", self.paths.models, "modelsFolder")):
            row = QHBoxLayout()
            shown = named(QLabel(str(path)), f"{name}Label", label)
            opener = named(QPushButton("Open"), f"open{name[0].upper()}{name[1:]}Button", f"Open the folder: {label}")
            opener.clicked.connect(lambda _=False, p=path: QDesktopServices.openUrl(QUrl.fromLocalFile(str(p))))
            row.addWidget(shown, 1)
            row.addWidget(opener)
            form.addRow(label, row)
        self.move_data = MoveDataRow(self.paths, self.controllers.runner)
        self.move_data.error_shown.connect(self.error_shown)
        self.move_data.status_message.connect(self.status_message)
        form.addRow("", self.move_data)
        form.addRow("", self.move_data.note)
        self.folders = named(QListWidget(), "modelFoldersList", "Other folders with models")
        self.folders.setMaximumHeight(90)
        self.add_folder = named(QPushButton("Add folder…"), "addModelFolderButton", "Add a folder with models")
        self.forget_folder = named(QPushButton("Remove"), "forgetModelFolderButton", "Stop scanning the folder",
                                   "Its files stay where they are; its models leave the library")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_folder)
        buttons.addWidget(self.forget_folder)
        buttons.addStretch(1)
        form.addRow("Other model folders", self.folders)
        form.addRow("", buttons)
        return box

    def _models(self) -> QGroupBox:
        box = QGroupBox("Models")
        form = QFormLayout(box)
        self.context = named(QSpinBox(), "defaultContextSpin", "Context length of a new chat")
        self.context.setRange(256, 262144)
        self.context.setSingleStep(512)
        self.context.setSuffix(" tokens")
        self.gpu_layers = named(QSpinBox(), "defaultGpuLayersSpin", "GPU layers")
        self.gpu_layers.setRange(-1, 1000)
        self.gpu_layers.setSpecialValueText("auto (as many as fit)")
        self.threads = named(QSpinBox(), "threadsSpin", "CPU threads")
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("auto (cores − 1)")
        self.flash = named(QCheckBox("Flash attention on a GPU (faster, less memory; turn off if a model misbehaves)"), "flashAttentionCheck",
                           "Flash attention")
        self.embedding = named(QLineEdit(), "defaultEmbeddingEdit", "Embedding model of new collections")
        self.embedding.setPlaceholderText("the recommended model")
        self.pick_embedding = named(QPushButton("Choose…"), "chooseEmbeddingButton", "Choose an embedding model")
        row = QHBoxLayout()
        row.addWidget(self.embedding, 1)
        row.addWidget(self.pick_embedding)
        form.addRow("Context of a new chat", self.context)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("CPU threads", self.threads)
        form.addRow("", self.flash)
        form.addRow("Embedding model", row)
        form.addRow(_note("GPU layers, threads and flash attention apply when a model is loaded next."))
        return box

    def _remote(self) -> QGroupBox:
        box = QGroupBox("Remote servers")
        form = QFormLayout(box)
        self.remotes = named(QListWidget(), "remoteServersList", "Remote servers")
        self.remotes.setMaximumHeight(80)
        self.remote_name = named(QLineEdit(), "remoteNameEdit", "Name of the remote server")
        self.remote_name.setPlaceholderText("workstation")
        self.remote_url = named(QLineEdit(), "remoteUrlEdit", "Address of the remote server")
        self.remote_url.setPlaceholderText("http://192.168.1.20:8080/v1")
        self.remote_key = named(QLineEdit(), "remoteKeyEdit", "API key of the remote server")
        self.remote_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.remote_key.setPlaceholderText("if it needs one")
        self.add_remote = named(QPushButton("Add and check"), "addRemoteButton", "Add the remote server",
                                "Ember asks it for its models first; it is added only if it answers")
        self.remove_remote = named(QPushButton("Remove"), "removeRemoteButton", "Remove the remote server")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_remote)
        buttons.addWidget(self.remove_remote)
        buttons.addStretch(1)
        form.addRow("Servers", self.remotes)
        form.addRow("Name", self.remote_name)
        form.addRow("Address", self.remote_url)
        form.addRow("API key", self.remote_key)
        form.addRow("", buttons)
        form.addRow(_note("A llama.cpp server, vLLM, Ollama or another Ember: any OpenAI-compatible API. Its models "
                      "appear in the Chat page's model list."))
        return box

    def _chats(self) -> QGroupBox:
        box = QGroupBox("Chats")
        form = QFormLayout(box)
        self.system_prompt = named(QPlainTextEdit(), "defaultSystemPromptEdit", "System prompt of a new chat")
        self.system_prompt.setPlaceholderText("How the model should behave, in a chat started afresh")
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setMaximumHeight(90)
        form.addRow("System prompt", self.system_prompt)
        form.addRow(_note("A new chat copies the chat that is open; these apply when none is."))
        return box

    def _appearance(self) -> QGroupBox:
        box = QGroupBox("Appearance")
        form = QFormLayout(box)
        self.theme = named(QComboBox(), "themeCombo", "Theme")
        for key in THEMES:
            self.theme.addItem({"system": "As the system", "light": "Light", "dark": "Dark"}[key], key)
        self.font_size = named(QSpinBox(), "fontSizeSpin", "Font size")
        self.font_size.setRange(0, 40)
        self.font_size.setSpecialValueText("as the system")
        self.font_size.setSuffix(" pt")
        form.addRow("Theme", self.theme)
        form.addRow("Font size", self.font_size)
        return box

    def _server(self) -> QGroupBox:
        box = QGroupBox("Server for other programs")
        form = QFormLayout(box)
        self.port = named(QSpinBox(), "settingsServerPortSpin", "Server port")
        self.port.setRange(1024, 65535)
        self.network = named(QCheckBox("Other computers may connect (with the API key)"), "settingsServerNetworkCheck",
                             "Other computers may connect")
        form.addRow("Port", self.port)
        form.addRow("", self.network)
        form.addRow(QLabel("Switch it on, and find the key and examples, on the Server page."))
        return box

    def _machine(self) -> QGroupBox:
        box = QGroupBox("Measured on this machine")
        form = QFormLayout(box)
        self.measured = named(QLabel(""), "measurementsLabel", "What Ember measured")
        self.measured.setWordWrap(True)
        self.forget_measured = named(QPushButton("Forget and measure again"), "forgetMeasurementsButton",
                                     "Forget the measurements", "Speed predictions start again from the memory "
                                     "bandwidth, measured anew, and learn from the next chats")
        form.addRow(self.measured)
        form.addRow(self.forget_measured)
        return box

    # --- values ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.context.editingFinished.connect(lambda: self._save(context_length=self.context.value()))
        self.gpu_layers.valueChanged.connect(lambda v: self._save(gpu_layers="auto" if v < 0 else str(v)))
        self.threads.valueChanged.connect(lambda v: self._save(threads=v))
        self.flash.toggled.connect(lambda on: self._save(flash_attention=on))
        self.theme.activated.connect(lambda _i: self._save(theme=self.theme.currentData()))
        self.font_size.editingFinished.connect(lambda: self._save(font_size=self.font_size.value()))
        self.system_prompt.textChanged.connect(self._text_timer.start)
        self.embedding.editingFinished.connect(self._save_texts)
        self.pick_embedding.clicked.connect(self._choose_embedding)
        self.add_folder.clicked.connect(self._choose_folder)
        self.forget_folder.clicked.connect(self._forget_folder)
        self.controllers.library.library_changed.connect(lambda _entries: self._show_folders())
        server = self.controllers.server
        self.port.editingFinished.connect(lambda: self.port.value() != server.settings.port
                                          and server.change(port=self.port.value()))
        self.network.toggled.connect(lambda on: on != server.settings.network and server.change(network=on))
        server.state_changed.connect(self._show_server)
        self.forget_measured.clicked.connect(self.forget_measurements)
        self.add_remote.clicked.connect(self.add_remote_server)
        self.remove_remote.clicked.connect(self._remove_remote)

    def show_preferences(self, prefs: Preferences) -> None:
        widgets = (self.context, self.gpu_layers, self.threads, self.flash, self.theme, self.font_size,
                   self.system_prompt, self.embedding)
        for widget in widgets:
            widget.blockSignals(True)
        self.context.setValue(prefs.context_length)
        self.gpu_layers.setValue(-1 if prefs.gpu_layers == "auto" else int(prefs.gpu_layers))
        self.threads.setValue(prefs.threads)
        self.flash.setChecked(prefs.flash_attention)
        self.theme.setCurrentIndex(max(0, self.theme.findData(prefs.theme)))
        self.font_size.setValue(prefs.font_size)
        if self.system_prompt.toPlainText() != prefs.system_prompt:
            self.system_prompt.setPlainText(prefs.system_prompt)
        self.embedding.setText(prefs.embedding_model)
        for widget in widgets:
            widget.blockSignals(False)
        self._show_folders()
        self._show_remotes()
        self._show_server()
        self._show_measurements()

    def _save(self, **changes) -> None:
        try:
            prefs = save_preferences(self.paths, **changes)
        except EmberError as error:
            self.error_shown.emit(error)
            self.show_preferences(load_preferences(self.paths))  # back to what is saved
            return
        if {"theme", "font_size"} & set(changes):
            apply_choice(prefs.theme, prefs.font_size)
        self.status_message.emit("Saved.")
        self.saved.emit(prefs)

    def _save_texts(self) -> None:
        self._text_timer.stop()
        prefs = load_preferences(self.paths)
        changes = {}
        if self.system_prompt.toPlainText() != prefs.system_prompt:
            changes["system_prompt"] = self.system_prompt.toPlainText()
        if self.embedding.text().strip() != prefs.embedding_model:
            changes["embedding_model"] = self.embedding.text().strip()
        if changes:
            self._save(**changes)

    def _choose_embedding(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF embedding model", "", "GGUF models (*.gguf)")
        if path:
            self.embedding.setText(path)
            self._save_texts()

    # --- folders, server, measurements ---------------------------------------------------------------
    def _show_folders(self) -> None:
        self.folders.clear()
        self.folders.addItems(self.controllers.library.folders())
        self.forget_folder.setEnabled(self.folders.count() > 0)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder with GGUF models")
        if folder:
            self.controllers.library.add_folder(folder)

    def _forget_folder(self) -> None:
        item = self.folders.currentItem() or self.folders.item(0)
        if item is not None:
            self.controllers.library.forget_folder(item.text())

    def _show_remotes(self) -> None:
        self.remotes.clear()
        for endpoint in load_endpoints(self.paths):
            self.remotes.addItem(f"{endpoint.name} — {endpoint.url}")
        self.remove_remote.setEnabled(self.remotes.count() > 0)

    def add_remote_server(self) -> None:
        """Ask the server for its models (on a worker); keep it only when it answers."""
        try:
            endpoint = Endpoint(self.remote_name.text(), self.remote_url.text(), self.remote_key.text()).checked()
        except EmberError as error:
            self.error_shown.emit(error)
            return
        self.add_remote.setEnabled(False)
        self.status_message.emit(f"Asking {endpoint.url} for its models…")

        def answered(names) -> None:
            save_endpoint(self.paths, endpoint)
            self.remote_name.clear()
            self.remote_url.clear()
            self.remote_key.clear()
            self._show_remotes()
            self.controllers.runtime.refresh_remote()
            self.status_message.emit(f"{endpoint.name}: {len(names)} model(s), now in the Chat page's list.")
            self.remote_added.emit(endpoint.name)

        self.controllers.runner.run(list_models, endpoint, name="check-remote", on_result=answered,
                                    on_error=self.error_shown.emit,
                                    on_finished=lambda: self.add_remote.setEnabled(True))

    def _remove_remote(self) -> None:
        row = max(0, self.remotes.currentRow())
        endpoints = load_endpoints(self.paths)
        if row < len(endpoints):
            remove_endpoint(self.paths, endpoints[row].name)
            self._show_remotes()
            self.controllers.runtime.refresh_remote()

    def _show_server(self) -> None:
        server = self.controllers.server
        for widget, setter, value in ((self.port, self.port.setValue, server.settings.port),
                                      (self.network, self.network.setChecked, server.settings.network)):
            widget.blockSignals(True)
            setter(value)
            widget.blockSignals(False)

    def _show_measurements(self) -> None:
        stored = load_settings(self.paths.settings)
        bandwidth = stored.get("memory_bandwidth") or {}
        calibration = stored.get("speed_calibration") or {}
        lines = []
        if isinstance(bandwidth, dict) and isinstance(bandwidth.get("bytes_per_s"), (int, float)):
            lines.append(f"Memory bandwidth: {human_size(bandwidth['bytes_per_s'])}/s")
        if isinstance(calibration, dict) and calibration:
            lines.append(f"Speed predictions calibrated from chats on: {', '.join(sorted(calibration))}")
        self.measured.setText("\n".join(lines) or "Nothing measured yet.")

    def forget_measurements(self) -> None:
        def change(settings) -> None:
            for key in MACHINE_KEYS:
                settings.values.pop(key, None)

        update_settings(self.paths.settings, change)
        self._show_measurements()
        self.status_message.emit("Forgot the measurements; they are made again when needed.")


def _note(text: str) -> QLabel:
    """A line of explanation under a section's fields, wrapped to the page's width."""
    label = QLabel(text)
    label.setWordWrap(True)
    return label
