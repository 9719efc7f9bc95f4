"""MessageModel: the shown branch of a chat, plus the reply that is streaming in.

Each row is a DisplayMessage: the stored message, where it sits among its siblings (for ◀ 2/3 ▶),
and while streaming, the text received so far.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from engine.store.chats import Message

MessageRole = Qt.ItemDataRole.UserRole + 1  # the DisplayMessage


@dataclass(frozen=True)
class DisplayMessage:
    message: Message
    sibling_index: int = 1  # 1-based
    sibling_count: int = 1

    @property
    def id(self) -> int:
        return self.message.id


def describe(item: DisplayMessage) -> str:
    """What a screen reader says for a message."""
    m = item.message
    who = "You" if m.role == "user" else "Assistant"
    status = "" if m.status == "complete" else f" ({m.status})"
    branch = f", version {item.sibling_index} of {item.sibling_count}" if item.sibling_count > 1 else ""
    return f"{who}{status}{branch}: {m.content}"


class MessageModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: list[DisplayMessage] = []

    def set_messages(self, items: list[DisplayMessage]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

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
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return item.message.content
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return describe(item)
        if role == MessageRole:
            return item
        return None

    def item_at(self, row: int) -> DisplayMessage | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def items(self) -> list[DisplayMessage]:
        return list(self._items)

    def row_of(self, message_id: int) -> int:
        for row, item in enumerate(self._items):
            if item.id == message_id:
                return row
        return -1
