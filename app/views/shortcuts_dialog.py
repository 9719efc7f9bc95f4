"""Help → Keyboard shortcuts: a table of the keys the window and the message actions answer to.

It is given those keys by the window (from `main_window.SHORTCUTS` and `MessageActions.ACTIONS`, the
tables the keys are made from), so the list cannot drift from what the keys do. Not modal.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.views.widgets import named

# Keys a single widget handles itself (not window shortcuts), said once under the table.
WIDGET_KEYS = ("In the message box Enter sends and Shift+Enter adds a line. In a list of chats or collections "
               "F2 renames. Tab and Shift+Tab move between controls.")


def shown_keys(keys: str) -> str:
    """The keys as this platform writes them (Esc, ⌘N ...)."""
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


class ShortcutsDialog(QDialog):
    def __init__(self, window_keys: list[tuple[str, str]], message_keys: list[tuple[str, str]],
                 parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.setAccessibleName("Keyboard shortcuts")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        rows = [(shown_keys(k), what, "Anywhere") for k, what in window_keys]
        rows += [(shown_keys(k), what, "The selected message") for k, what in message_keys]
        self.table = named(QTableWidget(len(rows), 3), "shortcutsTable", "Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Keys", "What it does", "Where"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, cells in enumerate(rows):
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnToContents(0)
        note = named(QLabel(WIDGET_KEYS), "shortcutsNote", "Other keys")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        named(close, "closeShortcutsButton", "Close")
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(560, 460)
        self.table.setFocus()

    def rows(self) -> list[tuple[str, str, str]]:
        """What the table shows, row by row (Keys, What it does, Where)."""
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]
