"""SessionListModel: the chats, newest first, optionally filtered by a search."""

from __future__ import annotations

import time

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from engine.store.chats import Session

SessionIdRole = Qt.ItemDataRole.UserRole + 1


def _when(timestamp: float) -> str:
    age = time.time() - timestamp
    if age < 60:
        return "just now"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return time.strftime("%H:%M", time.localtime(timestamp))
    return time.strftime("%d %b", time.localtime(timestamp))


class SessionListModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._sessions: list[Session] = []
        self._snippets: dict[int, str] = {}

    def set_sessions(self, sessions: list[Session], snippets: dict[int, str] | None = None) -> None:
        self.beginResetModel()
        self._sessions = list(sessions)
        self._snippets = dict(snippets or {})
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._sessions)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._sessions):
            return None
        session = self._sessions[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return session.title
        if role == Qt.ItemDataRole.ToolTipRole:
            snippet = self._snippets.get(session.id)
            return f"{session.title}\n{snippet}" if snippet else f"{session.title} — {_when(session.updated_at)}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Chat {session.title}, updated {_when(session.updated_at)}"
        if role == SessionIdRole:
            return session.id
        return None

    def session_at(self, row: int) -> Session | None:
        return self._sessions[row] if 0 <= row < len(self._sessions) else None

    def row_of(self, session_id: int) -> int:
        for row, session in enumerate(self._sessions):
            if session.id == session_id:
                return row
        return -1
