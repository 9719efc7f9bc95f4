"""MessageModel: the shown branch of a chat, plus the reply that is streaming in.

Each row is a DisplayMessage: the stored message and where it sits among its siblings (for
◀ 2/3 ▶). `set_messages` changes only the rows that differ, so finishing a reply in a chat of 1,000
messages touches one row, not the whole list; `append_text` repaints only the streaming row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from engine.store.chat_documents_repo import MessageSource
from engine.store.chats import Message

MessageRole = Qt.ItemDataRole.UserRole + 1  # the DisplayMessage
MessageIdRole = Qt.ItemDataRole.UserRole + 2

STATUS_WORDS = {
    "streaming": "writing",
    "cancelled": "stopped before the end",
    "interrupted": "interrupted: Ember closed while it was being written",
    "error": "failed",
}


@dataclass(frozen=True)
class DisplayMessage:
    message: Message
    sibling_index: int = 1  # 1-based
    sibling_count: int = 1
    sources: tuple[MessageSource, ...] = ()  # a reply's sources that were in its prompt, in [n] order

    @property
    def id(self) -> int:
        return self.message.id

    @property
    def role(self) -> str:
        return self.message.role


def speaker(message: Message) -> str:
    return {"user": "You", "assistant": "Assistant", "system": "System"}.get(message.role, message.role)


def describe(item: DisplayMessage) -> str:
    """What a screen reader says for a message."""
    m = item.message
    status = f" ({STATUS_WORDS.get(m.status, m.status)})" if m.status != "complete" else ""
    branch = f", version {item.sibling_index} of {item.sibling_count}" if item.sibling_count > 1 else ""
    return f"{speaker(m)}{status}{branch}: {m.content}"


class MessageModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: list[DisplayMessage] = []

    def set_messages(self, items: list[DisplayMessage]) -> None:
        """Show these rows, changing only what differs from the rows shown now."""
        items = list(items)
        old = self._items
        same = 0
        while same < min(len(old), len(items)) and old[same].id == items[same].id:
            same += 1
        if same == 0 and old and items:  # another chat: start over
            self.beginResetModel()
            self._items = items
            self.endResetModel()
            return
        for row in range(same):
            if old[row] != items[row]:
                self._items[row] = items[row]
                index = self.index(row)
                self.dataChanged.emit(index, index)
        if same < len(old):
            self.beginRemoveRows(QModelIndex(), same, len(old) - 1)
            del self._items[same:]
            self.endRemoveRows()
        if same < len(items):
            self.beginInsertRows(QModelIndex(), same, len(items) - 1)
            self._items.extend(items[same:])
            self.endInsertRows()

    def append_text(self, message_id: int, text: str) -> None:
        """Add streamed text to a message (normally the last row); repaints only that row."""
        for row in range(len(self._items) - 1, -1, -1):
            item = self._items[row]
            if item.id == message_id:
                self._items[row] = replace(item, message=replace(item.message, content=item.message.content + text))
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, MessageRole])
                return

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.message.content
        if role in (Qt.ItemDataRole.AccessibleTextRole, Qt.ItemDataRole.ToolTipRole):
            return describe(item) if role == Qt.ItemDataRole.AccessibleTextRole else None
        if role == MessageRole:
            return item
        if role == MessageIdRole:
            return item.id
        return None

    def item_at(self, row: int) -> DisplayMessage | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def items(self) -> list[DisplayMessage]:
        return list(self._items)

    def row_of(self, message_id: int | None) -> int:
        for row in range(len(self._items) - 1, -1, -1):
            if self._items[row].id == message_id:
                return row
        return -1
