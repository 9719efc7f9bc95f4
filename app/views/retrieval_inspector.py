"""The retrieval inspector: for one reply, every chunk retrieval found and why it was or was not used.

Each row is a retrieved chunk in rank order: its [n] in the prompt (or why it was left out: below the
top k, or cut by the context budget), where it is, its BM25 rank, vector rank and cosine similarity,
the fused score, and its size. The selected chunk's text is shown below and can be opened.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.views.widgets import named
from engine.store.chat_documents_repo import MessageRetrieval, MessageSource

COLUMNS = ("Rank", "In the prompt", "Source", "BM25 rank", "Vector rank", "Similarity", "Fused score", "Tokens")
MODE_WORDS = {"retrieve": "best chunks", "whole": "whole documents"}


def _cell(value, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem("–" if value is None else str(value))
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def in_prompt_text(source: MessageSource) -> str:
    return f"[{source.number}]" if source.number is not None else f"no: {source.cut_reason or 'left out'}"


class RetrievalInspector(QDialog):
    open_requested = Signal(object)  # MessageSource

    def __init__(self, retrieval: MessageRetrieval, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("retrievalInspector")
        self.setWindowTitle("Retrieval inspector")
        self.resize(900, 560)
        self.retrieval = retrieval
        layout = QVBoxLayout(self)
        used = sum(1 for s in retrieval.sources if s.in_prompt)
        seconds = f" in {retrieval.seconds * 1000:.0f} ms" if retrieval.seconds is not None else ""
        summary = (f"Searched for “{retrieval.query}” · {MODE_WORDS.get(retrieval.mode, retrieval.mode)}, "
                   f"k = {retrieval.k} · {len(retrieval.sources)} found{seconds}, {used} in the prompt")
        self.summary = named(QLabel(summary), "inspectorSummary", "What was searched")
        self.summary.setWordWrap(True)
        self.table = named(QTableWidget(len(retrieval.sources), len(COLUMNS)), "inspectorTable", "Retrieved chunks")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        for row, s in enumerate(retrieval.sources):
            cells = (_cell(s.rank, True), _cell(in_prompt_text(s)), _cell(s.location), _cell(s.bm25_rank, True),
                     _cell(s.vector_rank, True), _cell(None if s.similarity is None else f"{s.similarity:.3f}", True),
                     _cell(None if s.score is None else f"{s.score:.4f}", True), _cell(s.tokens, True))
            for column, cell in enumerate(cells):
                self.table.setItem(row, column, cell)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.text = named(QPlainTextEdit(), "inspectorChunkText", "The chunk's text")
        self.text.setReadOnly(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.text)
        splitter.setSizes([330, 170])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_button = named(QPushButton("Open source"), "inspectorOpenButton", "Open the chunk's source")
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.open_button.clicked.connect(self._open)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.table.currentCellChanged.connect(lambda row, *_: self._show(row))
        if retrieval.sources:
            self.table.selectRow(0)
        self.open_button.setEnabled(bool(retrieval.sources))

    def _show(self, row: int) -> None:
        if 0 <= row < len(self.retrieval.sources):
            source = self.retrieval.sources[row]
            heading = " › ".join(source.heading_path)
            self.text.setPlainText((heading + "\n\n" if heading else "") + source.text)

    def _open(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.retrieval.sources):
            self.open_requested.emit(self.retrieval.sources[row])
