"""What a click on a citation [n] shows first: where the source is and the passage the model read,
with a button that opens the document there and one that shows why retrieval chose it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from app.views.widgets import named
from engine.store.chat_documents_repo import MessageSource


class CitationPopup(QDialog):
    open_requested = Signal(object)  # MessageSource
    inspect_requested = Signal()

    def __init__(self, source: MessageSource, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("citationPopup")
        self.setWindowTitle(f"Source [{source.number}]")
        self.resize(560, 340)
        self.source = source
        layout = QVBoxLayout(self)
        heading = " › ".join(source.heading_path)
        where = named(QLabel(f"<b>[{source.number}] {source.location}</b>" + (f"<br>{heading}" if heading else "")),
                      "citationLocation", "Where the source is")
        where.setWordWrap(True)
        where.setToolTip(source.path)
        self.snippet = named(QPlainTextEdit(source.text), "citationSnippet", "The passage the reply was given")
        self.snippet.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_button = named(QPushButton("Open the document here"), "openCitationButton",
                                 "Open the document at this passage")
        self.inspect_button = named(QPushButton("Why this source?"), "inspectCitationButton",
                                    "Show the retrieval of this reply")
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.inspect_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.open_button.clicked.connect(lambda: self.open_requested.emit(self.source))
        self.inspect_button.clicked.connect(self.inspect_requested)
        layout.addWidget(where)
        layout.addWidget(self.snippet, 1)
        layout.addWidget(buttons)
        self.open_button.setDefault(True)
