"""How one file was cut: its chunks in order, each with its place (page or lines, headings) and size,
and the chunk's text with the words it repeats from the one before (the overlap) shown in grey."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.views.colors import text_css
from app.views.widgets import named
from engine.store.documents_repo import Document, StoredChunk

MAX_OVERLAP_CHARS = 4000


def chunk_place(chunk: StoredChunk) -> str:
    if chunk.page_start is not None:
        return (f"page {chunk.page_start}" if chunk.page_end in (None, chunk.page_start)
                else f"pages {chunk.page_start}–{chunk.page_end}")
    if chunk.line_start is not None:
        return (f"line {chunk.line_start}" if chunk.line_end in (None, chunk.line_start)
                else f"lines {chunk.line_start}–{chunk.line_end}")
    return ""


def overlap_length(previous: str, text: str) -> int:
    """How many characters at the start of `text` repeat the end of `previous` (0 when none)."""
    limit = min(len(previous), len(text), MAX_OVERLAP_CHARS)
    for size in range(limit, 0, -1):
        if previous.endswith(text[:size]):
            return size
    return 0


class ChunkPreview(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("chunkPreview")
        self.chunks: list[StoredChunk] = []
        self.title = named(QLabel("Select a file on the Files tab to see how it was cut into chunks."),
                           "chunkPreviewTitle", "Chunk preview")
        self.title.setWordWrap(True)
        self.list = named(QListWidget(), "chunkList", "Chunks of the file")
        self.text = named(QTextBrowser(), "chunkText", "Text of the chunk")
        self.text.setOpenLinks(False)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.list)
        splitter.addWidget(self.text)
        splitter.setSizes([280, 520])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(splitter, 1)
        self.list.currentRowChanged.connect(self._show_chunk)

    def show_document(self, document: Document | None, chunks: list[StoredChunk], settings: dict) -> None:
        self.chunks = chunks
        self.list.clear()
        self.text.clear()
        if document is None:
            self.title.setText("Select a file on the Files tab to see how it was cut into chunks.")
            return
        name = Path(document.path).name
        if not chunks:
            self.title.setText(f"{name} has no chunks ({document.status}"
                               + (f": {document.error}" if document.error else "") + ").")
            return
        tokens = sum(c.token_count for c in chunks)
        self.title.setText(f"{name}: {len(chunks)} chunks, {tokens} tokens; chunks of at most "
                           f"{settings.get('chunk_tokens')} tokens, {settings.get('overlap_tokens')} repeated "
                           "from the one before (grey).")
        for chunk in chunks:
            where = " · ".join(part for part in (chunk_place(chunk), " › ".join(chunk.heading_path)) if part)
            item = QListWidgetItem(f"{chunk.ordinal + 1}. {where or 'whole file'} · {chunk.token_count} tokens")
            item.setToolTip(chunk.text[:300])
            self.list.addItem(item)
        self.list.setCurrentRow(0)

    def _show_chunk(self, row: int) -> None:
        if not 0 <= row < len(self.chunks):
            self.text.clear()
            return
        chunk = self.chunks[row]
        repeated = overlap_length(self.chunks[row - 1].text, chunk.text) if row > 0 else 0
        head, rest = chunk.text[:repeated], chunk.text[repeated:]
        muted = text_css("muted")
        body = (f"<span style='color: {muted}'>{html.escape(head)}</span>" if head else "") + html.escape(rest)
        self.text.setHtml(f"<div style='white-space: pre-wrap'>{body}</div>")
