"""The chat's documents: which collections it answers from, and how (the k best chunks, or whole documents).

Part of the chat's settings panel. Whole documents are offered only when the chosen collections fit
comfortably in the context (at most WHOLE_SHARE of it, with the chat tokenizer's usual excess);
otherwise retrieval picks the best chunks. Edits are emitted at once (they are quick SQL).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from app.views.widgets import named
from engine.store.chat_documents_repo import DEFAULT_K, MAX_K, ChatDocuments

WHOLE_SHARE = 0.5
CHAT_TOKENS_PER_EMBEDDING_TOKEN = 1.3


class ChatDocumentsBox(QGroupBox):
    changed = Signal(list, str, int)  # collection ids, mode ("retrieve" | "whole"), k

    def __init__(self, parent=None) -> None:
        super().__init__("Documents", parent)
        self.setObjectName("chatDocumentsBox")
        self._loading = False
        self._choices: list = []
        self._context = 4096
        layout = QVBoxLayout(self)
        self.empty = named(QLabel("No collections yet. Make one on the Documents page, then tick it here."),
                           "chatDocumentsEmpty", "No document collections")
        self.empty.setWordWrap(True)
        self.list = named(QListWidget(), "chatCollectionsList", "Collections this chat answers from")
        self.list.setMaximumHeight(110)
        self.best = named(QRadioButton("Best chunks:"), "bestChunksRadio", "Answer from the best chunks")
        self.k = named(QSpinBox(), "chunksPerQuestionSpin", "Chunks per question")
        self.k.setRange(1, MAX_K)
        self.k.setValue(DEFAULT_K)
        self.whole = named(QRadioButton("Whole documents"), "wholeDocumentsRadio",
                           "Put the whole documents in the prompt")
        group = QButtonGroup(self)
        group.addButton(self.best)
        group.addButton(self.whole)
        self.best.setChecked(True)
        row = QHBoxLayout()
        row.addWidget(self.best)
        row.addWidget(self.k)
        row.addStretch(1)
        self.note = named(QLabel(), "chatDocumentsNote", "About the documents")
        self.note.setWordWrap(True)
        for widget in (self.empty, self.list):
            layout.addWidget(widget)
        layout.addLayout(row)
        layout.addWidget(self.whole)
        layout.addWidget(self.note)
        self.list.itemChanged.connect(self._edited)
        self.best.toggled.connect(self._edited)
        self.k.valueChanged.connect(self._edited)

    def show_documents(self, choices: list, used: ChatDocuments, context_length: int) -> None:
        self._loading = True
        self._choices, self._context = list(choices), context_length
        self.list.clear()
        for choice in self._choices:
            item = QListWidgetItem(f"{choice.name}  ({choice.chunks} chunks)")
            item.setData(Qt.ItemDataRole.UserRole, choice.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if choice.id in used.collection_ids else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.empty.setVisible(not self._choices)
        self.list.setVisible(bool(self._choices))
        self.k.setValue(used.k)
        (self.whole if used.mode == "whole" else self.best).setChecked(True)
        self._loading = False
        self._update_state()

    def chosen_ids(self) -> list[int]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def whole_fits(self) -> bool:
        """Whether the chosen collections fit comfortably in the context as whole documents."""
        ids = set(self.chosen_ids())
        tokens = sum(c.tokens for c in self._choices if c.id in ids)
        return bool(ids) and tokens * CHAT_TOKENS_PER_EMBEDDING_TOKEN <= WHOLE_SHARE * self._context

    def _update_state(self) -> None:
        chosen = bool(self.chosen_ids())
        fits = self.whole_fits()
        self.best.setEnabled(chosen)
        self.k.setEnabled(chosen and self.best.isChecked())
        self.whole.setEnabled(chosen and (fits or self.whole.isChecked()))
        if not chosen:
            self.note.setText("Tick a collection to answer from its documents, with citations." if self._choices
                              else "")
        elif self.whole.isChecked() and not fits:
            self.note.setText("These documents no longer fit comfortably in the context; the prompt keeps as "
                              "many as fit. Best chunks is the better choice now.")
        elif fits:
            self.note.setText("These documents are small enough to go in whole.")
        else:
            self.note.setText("Too large to go in whole: each question retrieves its best chunks.")

    def _edited(self, *_args) -> None:
        self._update_state()
        if not self._loading:
            mode = "whole" if self.whole.isChecked() and self.whole.isEnabled() else "retrieve"
            self.changed.emit(self.chosen_ids(), mode, self.k.value())
