"""The Server panel: Ember as the local model server of the user's other programs.

A switch, the address, the API key (hidden until asked, with a copy button), a snippet to paste
(curl and Python) that already holds the address, the model's name and the key, the queue, and a
live list of the requests served (time, client, endpoint, model, tokens, duration, status).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.controllers.server_controller import ServerController
from app.controllers.window_controllers import WindowControllers
from app.models.rows_table_model import Column, RowsTableModel
from app.views.colors import text_css
from app.views.tables import table_view
from app.views.widgets import named

REFRESH_MS = 2000  # the served models and the queue, while the panel shows
NETWORK_WARNING = ("Other computers on your network can use your models with the key. Only turn this on on "
                   "a network you trust; the key is all that keeps others out.")

RECORD_COLUMNS = [
    Column("Time", lambda r: time.strftime("%H:%M:%S", time.localtime(r.started))),
    Column("Client", lambda r: r.client),
    Column("Endpoint", lambda r: f"{r.method} {r.endpoint}"),
    Column("Model", lambda r: r.model or ""),
    Column("Tokens", lambda r: "" if r.tokens is None else str(r.tokens), align_right=True),
    Column("Seconds", lambda r: f"{r.seconds:.2f}" + (f" ({r.waited_s:.1f} queued)" if r.waited_s >= 0.05 else ""),
           align_right=True),
    Column("Status", lambda r: str(r.status), tooltip=lambda r: r.error or "",
           color=lambda r: text_css("error") if r.status >= 400 else None),
]


def build_page(controllers: WindowControllers, parent=None) -> ServerPage:
    controller = controllers.server
    page = ServerPage(controller, parent)
    controllers.runtime.loaded.connect(lambda _model: page.refresh())
    controllers.runtime.unloaded.connect(page.refresh)
    if controller.was_on:
        controller.start()
    return page


class ServerPage(QWidget):
    status_message = Signal(str)
    error_shown = Signal(object)

    def __init__(self, controller: ServerController, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("serverPage")
        self.controller = controller
        self.switch = named(QCheckBox("Serve the loaded models to other programs"), "serverSwitch",
                            "Serve the loaded models to other programs")
        self.status = named(QLabel(""), "serverStatusLabel", "Server status")
        self.status.setWordWrap(True)
        self.port = named(QSpinBox(), "serverPortSpin", "Port")
        self.port.setRange(1024, 65535)
        self.port.setMaximumWidth(110)
        self.network = named(QCheckBox("Other computers may connect"), "serverNetworkCheck",
                             "Other computers may connect")
        self.network_warning = named(QLabel(NETWORK_WARNING), "serverNetworkWarning", "Warning about the network")
        self.network_warning.setWordWrap(True)
        self.network_warning.setStyleSheet(f"color: {text_css('warning')};")
        self.key = named(QLineEdit(), "serverKeyEdit", "API key")
        self.key.setReadOnly(True)
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_key = named(QPushButton("Show"), "showKeyButton", "Show the API key")
        self.show_key.setCheckable(True)
        self.copy_key = named(QPushButton("Copy"), "copyKeyButton", "Copy the API key")
        self.new_key = named(QPushButton("New key"), "newKeyButton", "Make a new API key",
                             "Programs set up with the old key stop working")
        self.models = named(QLabel(""), "servedModelsLabel", "Models served")
        self.models.setWordWrap(True)
        self.queue = named(QLabel(""), "serverQueueLabel", "Requests waiting")
        self.examples = named(QTabWidget(), "serverExamples", "Examples to paste")
        self.curl = named(QPlainTextEdit(), "curlExample", "Example with curl")
        self.python = named(QPlainTextEdit(), "pythonExample", "Example in Python")
        for edit in (self.curl, self.python):
            edit.setReadOnly(True)
        self.examples.setMaximumHeight(150)
        self.examples.addTab(self.curl, "curl")
        self.examples.addTab(self.python, "Python")
        self.copy_example = named(QPushButton("Copy the example"), "copyExampleButton",
                                  "Copy the example, with the key")
        self.record_model = RowsTableModel(RECORD_COLUMNS)
        self.requests = table_view("serverRequestsTable", "Requests served", self.record_model)
        self._layout()
        self._connect()
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self.refresh()

    def _layout(self) -> None:
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        for button in (self.show_key, self.copy_key, self.new_key):
            key_row.addWidget(button)
        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("", self.network)
        form.addRow("", self.network_warning)
        form.addRow("API key", key_row)
        form.addRow("Models", self.models)
        form.addRow("Queue", self.queue)
        example_row = QHBoxLayout()
        example_row.addStretch(1)
        example_row.addWidget(self.copy_example)
        layout = QVBoxLayout(self)
        layout.addWidget(self.switch)
        layout.addWidget(self.status)
        layout.addLayout(form)
        layout.addWidget(QLabel("<b>Try it</b> (the copied example holds the key):"))
        layout.addWidget(self.examples)
        layout.addLayout(example_row)
        layout.addWidget(QLabel("<b>Requests</b>"))
        layout.addWidget(self.requests, 1)

    def _connect(self) -> None:
        c = self.controller
        c.state_changed.connect(self.refresh)
        c.request_recorded.connect(self._recorded)
        c.queue_changed.connect(self._show_queue)
        c.error.connect(self.error_shown)
        self.switch.toggled.connect(self._switched)
        self.port.editingFinished.connect(lambda: self.port.value() != c.settings.port
                                          and c.change(port=self.port.value()))
        self.network.toggled.connect(lambda on: on != c.settings.network and c.change(network=on))
        self.show_key.toggled.connect(self._show_key)
        self.copy_key.clicked.connect(lambda: self._copy(c.settings.api_key, "Copied the API key."))
        self.new_key.clicked.connect(lambda: c.change(new_key=True))
        self.copy_example.clicked.connect(self._copy_example)

    # --- showing the state ----------------------------------------------------------------------------
    def refresh(self) -> None:
        c = self.controller
        for widget, value in ((self.switch, c.running), (self.network, c.settings.network)):
            widget.blockSignals(True)
            widget.setChecked(value)
            widget.blockSignals(False)
        self.port.setValue(c.settings.port)
        self.network_warning.setVisible(c.settings.network)
        self.key.setText(c.settings.api_key)
        if c.running:
            self.status.setText(f"Serving at {c.base_url()}" + (" — other computers may connect with the key."
                                                                 if c.settings.network else " — this computer only."))
            self._timer.start()
        else:
            self.status.setText("Off. Turn it on to let other programs use the models loaded in Ember.")
            self._timer.stop()
        served = c.models()
        self.models.setText(", ".join(f"{m['id']} ({m['role']})" for m in served) if served else
                            "None loaded: load a chat model on the Chat page.")
        self._fill_examples(served)
        if c.gateway is not None:
            self._show_queue(c.gateway.queue_state())
        else:
            self.queue.setText("—")

    def _show_queue(self, queues: dict) -> None:
        parts = []
        for role, (busy, waiting) in queues.items():
            if busy or waiting:
                parts.append(f"{role}: {'answering' if busy else 'idle'}, {len(waiting)} waiting"
                             + (f" ({', '.join(waiting)})" if waiting else ""))
        self.queue.setText("; ".join(parts) if parts else "Nothing waiting.")

    def _recorded(self, _record) -> None:
        self.record_model.set_rows(list(reversed(self.controller.records)))  # newest first

    def _show_key(self, shown: bool) -> None:
        self.key.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_key.setText("Hide" if shown else "Show")
        self._fill_examples(self.controller.models())

    def _fill_examples(self, served: list[dict]) -> None:
        chat = _chat_model(served)
        shown_key = self.controller.settings.api_key if self.show_key.isChecked() else "<the key above>"
        self.curl.setPlainText(curl_example(self.controller.base_url(), shown_key, chat))
        self.python.setPlainText(python_example(self.controller.base_url(), shown_key, chat))

    # --- actions ------------------------------------------------------------------------------------
    def _switched(self, on: bool) -> None:
        if on:
            self.controller.start()
        else:
            self.controller.stop()

    def _copy(self, text: str, said: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status_message.emit(said)

    def _copy_example(self) -> None:
        chat = _chat_model(self.controller.models())
        make = curl_example if self.examples.currentIndex() == 0 else python_example
        self._copy(make(self.controller.base_url(), self.controller.settings.api_key, chat),
                   "Copied the example (it holds the API key).")

    def window_closed(self) -> None:
        self._timer.stop()
        self.controller.window_closed()


def _chat_model(served: list[dict]) -> str:
    """The name of the chat model served, for the examples."""
    return next((m["id"] for m in served if m["role"] == "chat"), "<load a chat model>")


def curl_example(base_url: str, key: str, model: str) -> str:
    return (f"curl {base_url}/chat/completions \\\n"
            f"  -H \"Authorization: Bearer {key}\" -H \"Content-Type: application/json\" \\\n"
            f"  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'")


def python_example(base_url: str, key: str, model: str) -> str:
    return ("from openai import OpenAI\n\n"
            f"client = OpenAI(base_url=\"{base_url}\", api_key=\"{key}\")\n"
            f"reply = client.chat.completions.create(model=\"{model}\",\n"
            "    messages=[{\"role\": \"user\", \"content\": \"Hello!\"}])\n"
            "print(reply.choices[0].message.content)")
