"""LibraryModel: the one Qt model of the model library, shared by the Chat page's picker and the Models page.

A table: the picker (a QComboBox) shows column 0, the Models page's library shows every column. It
is filled only by the library controller, so both pages always show the same scan.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from app.models.rows_table_model import Column, RowRole, RowsTableModel
from engine.library.library import LibraryEntry
from engine.progress_text import human_size

EntryRole = RowRole  # the LibraryEntry of a row
PathRole = Qt.ItemDataRole.UserRole + 10

SOURCE_WORDS = {"starter": "starter model", "hub": "downloaded", "folder": "from a folder", "added": "opened"}


def label(entry: LibraryEntry) -> str:
    """The model's name as the picker and the library's first column show it; details are in the tooltip."""
    if entry.info is None:
        return f"{entry.name} — unusable"
    return f"{entry.name}  (starter)" if entry.source == "starter" else entry.name


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


def _parameters(n: int) -> str:
    return f"{n / 1e9:.1f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"


COLUMNS = [
    Column("Model", label, tooltip=details),
    Column("Architecture", lambda e: e.info.architecture if e.info else "-"),
    Column("Parameters", lambda e: _parameters(e.info.parameters) if e.info else "-", True),
    Column("Quant", lambda e: e.info.quantization if e.info else "-"),
    Column("Size", lambda e: human_size(e.info.file_size) if e.info else "-", True),
    Column("Context", lambda e: str(e.info.context_length or "-") if e.info else "-", True),
    Column("Template", lambda e: ("yes" if e.info.has_chat_template else "no") if e.info else "-"),
    Column("Speed", lambda e: f"{e.measured_tps:.0f} tokens/s (measured)" if e.measured_tps else "not measured yet"),
    Column("Source", lambda e: SOURCE_WORDS.get(e.source, e.source) + (f" ({e.repo_id})" if e.repo_id else "")),
    Column("Status", lambda e: e.error or "ok"),
]


class LibraryModel(RowsTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(COLUMNS, key=lambda e: e.path, parent=parent)

    def set_entries(self, entries: list[LibraryEntry]) -> None:
        self.set_rows(entries)

    def entries(self) -> list[LibraryEntry]:
        return self.rows()

    def entry_at(self, row: int) -> LibraryEntry | None:
        return self.row_object(row)

    def flags(self, index):
        flags = super().flags(index)
        entry = self.entry_at(index.row()) if index.isValid() else None
        if entry is not None and entry.info is None:
            flags &= ~Qt.ItemFlag.ItemIsEnabled  # listed with the reason, but cannot be picked
        return flags

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if role in (EntryRole, PathRole):
            entry = self.entry_at(index.row()) if index.isValid() else None
            if entry is None:
                return None
            return entry if role == EntryRole else entry.path
        if role == Qt.ItemDataRole.AccessibleTextRole and index.isValid() and index.column() == 0:
            entry = self.entry_at(index.row())
            return f"Model {label(entry)}" if entry else None
        return super().data(index, role)
