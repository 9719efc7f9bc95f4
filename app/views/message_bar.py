"""An inline bar for what the user should know now: an error (what happened, what to do, where the
log is) or an Undo offer. It never blocks the window, and closes with its × button."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from app.views.widgets import named

TINTS = {"error": "#d0433a", "undo": "#3b82c4", "info": "#3b82c4", "recovery": "#d68910"}


class MessageBar(QFrame):
    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.log_path: str | None = None
        self.setObjectName(f"{kind}Bar")
        self.setAccessibleName("Error" if kind == "error" else "Notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        self.message = named(QLabel(), f"{kind}Message", "Message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.message.font()
        font.setBold(True)
        self.message.setFont(font)
        self.hint = named(QLabel(), f"{kind}Hint", "What you can do")
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        texts.addWidget(self.message)
        texts.addWidget(self.hint)
        layout.addLayout(texts, 1)
        self.buttons = QHBoxLayout()
        layout.addLayout(self.buttons)
        self.log_button = None
        if kind == "error":
            self.log_button = self.add_button("Open log folder", "openLogButton", "Open the folder with Ember's log")
            self.log_button.clicked.connect(self._open_log)
        self.close_button = named(QToolButton(), f"dismiss{kind.capitalize()}Button", "Dismiss")
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.hide)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self._tint()
        self.hide()

    def _tint(self) -> None:
        palette = self.palette()
        tint = QColor(TINTS.get(self.kind, TINTS["info"]))
        base = palette.color(QPalette.ColorRole.Window)
        mixed = QColor(int(base.red() * 0.85 + tint.red() * 0.15), int(base.green() * 0.85 + tint.green() * 0.15),
                       int(base.blue() * 0.85 + tint.blue() * 0.15))
        palette.setColor(QPalette.ColorRole.Window, mixed)
        self.setPalette(palette)

    def add_button(self, text: str, object_name: str, accessible: str) -> QPushButton:
        button = named(QPushButton(text), object_name, accessible)
        self.buttons.addWidget(button)
        return button

    def show_message(self, message: str, hint: str = "", log_path: str | None = None) -> None:
        self.message.setText(message)
        self.log_path = log_path
        detail = hint or ""
        if log_path:
            detail += f"{' ' if detail else ''}Details: {log_path}"
        self.hint.setText(detail)
        self.hint.setVisible(bool(detail))
        if self.log_button is not None:
            self.log_button.setVisible(bool(log_path))
        self.setAccessibleDescription(f"{message} {detail}".strip())
        self.show()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.ApplicationPaletteChange:
            self.setPalette(QPalette())
            self._tint()

    def _open_log(self) -> None:
        if self.log_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.log_path).parent)))
