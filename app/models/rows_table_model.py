"""RowsTableModel: a read-only table over a list of engine objects, with columns given as (header, getter).

The Models page's tables (search results, files, downloads, library) are all this one adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

RowRole = Qt.ItemDataRole.UserRole + 1
ProgressRole = Qt.ItemDataRole.UserRole + 2  # a column's fraction done (0..1), for a progress-bar delegate


@dataclass(frozen=True)
class Column:
    header: str
    text: Callable[[object], str]
    align_right: bool = False
    tooltip: Callable[[object], str] | None = None
    fraction: Callable[[object], float | None] | None = None
    color: Callable[[object], str | None] | None = None  # a text colour ("#c0392b") for rows that need one


class RowsTableModel(QAbstractTableModel):
    def __init__(self, columns: list[Column], key: Callable[[object], object] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.columns = columns
        self.key = key
        self._rows: list = []

    def set_rows(self, rows: list) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def update_row(self, row_object) -> bool:
        """Replace the row with the same key (repaints one row); False if there is none."""
        if self.key is None:
            return False
        wanted = self.key(row_object)
        for row, current in enumerate(self._rows):
            if self.key(current) == wanted:
                self._rows[row] = row_object
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))
                return True
        return False

    def row_of(self, key) -> int:
        """The row whose key is `key`, or -1."""
        if self.key is not None:
            for row, current in enumerate(self._rows):
                if self.key(current) == key:
                    return row
        return -1

    def rows(self) -> list:
        return list(self._rows)

    def row_object(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.columns):
            return self.columns[section].header
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or not 0 <= index.column() < len(self.columns):
            return None
        obj, column = self._rows[index.row()], self.columns[index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return column.text(obj)
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tooltip(obj) if column.tooltip else column.text(obj)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.align_right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column.color is not None:
            color = column.color(obj)
            return QColor(color) if color else None
        if role == RowRole:
            return obj
        if role == ProgressRole and column.fraction is not None:
            return column.fraction(obj)
        return None
