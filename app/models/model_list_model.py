"""ModelListModel: the GGUF files the model picker offers (the library: starter, downloads, opened files)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from engine.library.library import LibraryEntry
from engine.progress_text import human_size

EntryRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2

SOURCE_WORDS = {"starter": "starter model", "hub": "downloaded", "folder": "from a folder", "added": "opened"}



def label(entry: LibraryEntry) -> str:
    info = entry.info
    if info is None:
        return f"{entry.name} — unusable"
    details = [info.quantization, human_size(info.file_size)]
    if entry.source == "starter":
        details.insert(0, "starter")
    return f"{entry.name}  ({', '.join(d for d in details if d)})"


def details(entry: LibraryEntry) -> str:
    info = entry.info
    lines = [entry.path, SOURCE_WORDS.get(entry.source, entry.source)]
    if info is not None:
        params = f"{info.parameters / 1e9:.2f} B" if info.parameters >= 1e9 else f"{info.parameters / 1e6:.0f} M"
        lines += [f"{info.architecture}, {params} parameters, {info.quantization}",
                  f"trained context {info.context_length or '?'} tokens"]
    if entry.error:
        lines.append(f"Cannot be used: {entry.error}")
    return "\n".join(lines)


class ModelListModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._entries: list[LibraryEntry] = []

    def set_entries(self, entries: list[LibraryEntry]) -> None:
        self.beginResetModel()
        self._entries = list(entries)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self._entries)

    def flags(self, index):
        flags = super().flags(index)
        entry = self.entry_at(index.row()) if index.isValid() else None
        if entry is not None and entry.info is None:
            flags &= ~Qt.ItemFlag.ItemIsEnabled  # listed with the reason, but cannot be picked
        return flags

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return label(entry)
        if role == Qt.ItemDataRole.ToolTipRole:
            return details(entry)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"Model {label(entry)}"
        if role == EntryRole:
            return entry
        if role == PathRole:
            return entry.path
        return None

    def entry_at(self, row: int) -> LibraryEntry | None:
        return self._entries[row] if 0 <= row < len(self._entries) else None

    def row_of(self, path: str | None) -> int:
        for row, entry in enumerate(self._entries):
            if entry.path == path:
                return row
        return -1
