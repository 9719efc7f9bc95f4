"""Where the user writes: the prompt (Enter or Ctrl+Enter sends, Shift+Enter adds a line), Send and
Stop, the "editing a message" strip, and the context budget under it."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.views.budget_bar import BudgetBar, describe_budget
from app.views.widgets import named

BUDGET_DEBOUNCE_MS = 350


class PromptEdit(QPlainTextEdit):
    """Enter or Ctrl+Enter sends; Shift+Enter inserts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    send_requested = Signal(str)  # the text; an edit when `editing_id` is set
    stop_requested = Signal()
    draft_changed = Signal(str)  # debounced: recount the context budget
    edit_cancelled = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.editing_id: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 4, 12, 8)

        self.edit_strip = QWidget()
        strip = QHBoxLayout(self.edit_strip)
        strip.setContentsMargins(0, 0, 0, 0)
        self.edit_label = named(QLabel("Editing your message: sending makes a new version; the old one is kept."),
                                "editingLabel", "Editing a message")
        self.cancel_edit_button = named(QPushButton("Cancel edit"), "cancelEditButton", "Cancel edit")
        strip.addWidget(self.edit_label, 1)
        strip.addWidget(self.cancel_edit_button)
        self.edit_strip.hide()
        layout.addWidget(self.edit_strip)

        row = QHBoxLayout()
        self.prompt = named(PromptEdit(), "promptEdit", "Message")
        self.prompt.setPlaceholderText("Message the model. Enter sends, Shift+Enter adds a line.")
        self.prompt.setTabChangesFocus(True)
        self.prompt.setFixedHeight(76)
        buttons = QVBoxLayout()
        self.send_button = named(QPushButton("Send"), "sendButton", "Send", "Send (Enter or Ctrl+Enter)")
        self.send_button.setDefault(True)
        self.stop_button = named(QPushButton("Stop"), "stopButton", "Stop the reply", "Stop the reply (Esc)")
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addWidget(self.prompt, 1)
        row.addLayout(buttons)
        layout.addLayout(row)

        self.budget_bar = BudgetBar()
        self.budget_label = named(QLabel(describe_budget(None)), "contextBudgetLabel", "Context budget")
        self.budget_label.setWordWrap(True)
        layout.addWidget(self.budget_bar)
        layout.addWidget(self.budget_label)

        self._budget_timer = QTimer(self)
        self._budget_timer.setSingleShot(True)
        self._budget_timer.setInterval(BUDGET_DEBOUNCE_MS)
        self._budget_timer.timeout.connect(lambda: self.draft_changed.emit(self.prompt.toPlainText()))
        self.prompt.textChanged.connect(self._budget_timer.start)
        self.prompt.submitted.connect(self.submit)
        self.send_button.clicked.connect(self.submit)
        self.stop_button.clicked.connect(self.stop_requested)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        self.setTabOrder(self.prompt, self.send_button)
        self.setTabOrder(self.send_button, self.stop_button)

    def submit(self) -> None:
        text = self.prompt.toPlainText()
        if text.strip() and self.send_button.isEnabled():
            self.send_requested.emit(text)

    def set_generating(self, generating: bool) -> None:
        self.send_button.setEnabled(not generating)
        self.stop_button.setEnabled(generating)

    def start_edit(self, message_id: int, text: str) -> None:
        self.editing_id = message_id
        self.prompt.setPlainText(text)
        self.edit_strip.show()
        self.prompt.setFocus()

    def cancel_edit(self) -> None:
        if self.editing_id is not None:
            self.editing_id = None
            self.edit_strip.hide()
            self.prompt.clear()
            self.edit_cancelled.emit()

    def sent(self) -> None:
        """The turn started: clear the prompt (kept until then, so an overflow Cancel loses nothing)."""
        self.editing_id = None
        self.edit_strip.hide()
        self.prompt.clear()

    def show_budget(self, budget) -> None:
        self.budget_bar.set_budget(budget)
        self.budget_label.setText(describe_budget(budget))
