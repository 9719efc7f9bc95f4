"""SessionListModel: the chats, newest first; during a search, the chats with a hit and its snippet.

Renaming edits the title in place (F2 or double-click): the model does not write anything, it emits
`rename_requested` and the controller saves the name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from engine.store.chats import Session

SessionIdRole = Qt.ItemDataRole.UserRole + 1
SubtitleRole = Qt.ItemDataRole.UserRole + 2  # a search snippet, or when the chat was last used
HitMessageRole = Qt.ItemDataRole.UserRole + 3  # the message a search hit points at (None outside a search)


@dataclass(frozen=True)
class SessionRow:
    session: Session
    snippet: str | None = None
    hit_message_id: int | None = None


def when(timestamp: float, now: float | None = None) -> str:
    age = (now or time.time()) - timestamp
    if age < 60:
        return "just now"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return time.strftime("%H:%M", time.localtime(timestamp))
    return time.strftime("%d %b %Y", time.localtime(timestamp))


def plain_snippet(snippet: str) -> str:
    """FTS5 marks matches with [ ]; shown as « » so they stand out in plain text."""
    return snippet.replace("[", "«").replace("]", "»").replace("\n", " ")


class SessionListModel(QAbstractListModel):
    rename_requested = Signal(int, str)  # session id, new title

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[SessionRow] = []

    def set_rows(self, rows: list[SessionRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def set_sessions(self, sessions: list[Session]) -> None:
        self.set_rows([SessionRow(s) for s in sessions])

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index):
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.isValid() else base

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        session = row.session
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return session.title
        if role == SubtitleRole:
            return plain_snippet(row.snippet) if row.snippet else when(session.updated_at)
        if role == Qt.ItemDataRole.ToolTipRole:
            detail = plain_snippet(row.snippet) if row.snippet else f"last used {when(session.updated_at)}"
            return f"{session.title}\n{detail}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            if row.snippet:
                return f"Chat {session.title}, match: {plain_snippet(row.snippet)}"
            return f"Chat {session.title}, last used {when(session.updated_at)}"
        if role == SessionIdRole:
            return session.id
        if role == HitMessageRole:
            return row.hit_message_id
        return None

    def setData(self, index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or not 0 <= index.row() < len(self._rows):
            return False
        title = str(value or "").strip()
        row = self._rows[index.row()]
        if not title or title == row.session.title:
            return False
        self.rename_requested.emit(row.session.id, title)
        return True

    def session_at(self, row: int) -> Session | None:
        return self._rows[row].session if 0 <= row < len(self._rows) else None

    def row_of(self, session_id: int | None) -> int:
        for number, row in enumerate(self._rows):
            if row.session.id == session_id:
                return number
        return -1
