"""The dialog that makes a collection or changes its settings: name, embedding model, chunk sizes.

Changing the model or the chunk sizes of a collection that holds chunks means embedding every
document again; the dialog says how much that is before the user agrees, and its button says what
will happen ("Save and index again").
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
)

from app.views.widgets import named
from engine.store.documents_repo import DEFAULT_SETTINGS, Collection, CollectionCounts

OTHER_FILE = "__other__"


class CollectionDialog(QDialog):
    def __init__(self, choices: list, parent=None, *, collection: Collection | None = None,
                 counts: CollectionCounts | None = None, name: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("collectionDialog")
        self.collection, self.counts = collection, counts
        self.setWindowTitle("Collection settings" if collection else "New collection")
        self.name = named(QLineEdit(collection.name if collection else name), "collectionNameEdit", "Collection name")
        self.name.setPlaceholderText("For example: Research notes")
        self.model = named(QComboBox(), "embeddingModelCombo", "Embedding model")
        for choice in choices:
            self.model.addItem(choice.label, choice.path)
        self.model.addItem("Another GGUF embedding model…", OTHER_FILE)
        if collection is not None and collection.embedding_model_path:
            row = self.model.findData(collection.embedding_model_path)
            if row < 0:
                self.model.insertItem(0, collection.embedding_model_path, collection.embedding_model_path)
                row = 0
            self.model.setCurrentIndex(row)
        settings = {**DEFAULT_SETTINGS, **(collection.settings if collection else {})}
        self.chunk_tokens = named(QSpinBox(), "chunkTokensSpin", "Chunk size in tokens")
        self.chunk_tokens.setRange(64, 2048)
        self.chunk_tokens.setSingleStep(32)
        self.chunk_tokens.setValue(settings["chunk_tokens"])
        self.overlap = named(QSpinBox(), "chunkOverlapSpin", "Overlap between chunks in tokens")
        self.overlap.setRange(0, 512)
        self.overlap.setSingleStep(8)
        self.overlap.setValue(settings["overlap_tokens"])
        self.about = named(QLabel(), "embeddingModelNote", "About the embedding model")
        self.about.setWordWrap(True)
        self.warning = named(QLabel(), "reindexWarning", "What saving will do")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: palette(highlight);")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Embedding model", self.model)
        form.addRow("", self.about)
        form.addRow("Chunk size (tokens)", self.chunk_tokens)
        form.addRow("Overlap (tokens)", self.overlap)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = named(self.buttons.button(QDialogButtonBox.StandardButton.Ok), "collectionOkButton",
                               "Save the collection")
        named(self.buttons.button(QDialogButtonBox.StandardButton.Cancel), "collectionCancelButton", "Cancel")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        self._previous_model = self.model.currentIndex()
        self.model.currentIndexChanged.connect(self._model_chosen)
        for widget in (self.chunk_tokens, self.overlap):
            widget.valueChanged.connect(self._update)
        self.name.textChanged.connect(self._update)
        self._update()

    def model_path(self) -> str:
        return self.model.currentData()

    def settings(self) -> dict:
        return {"chunk_tokens": self.chunk_tokens.value(), "overlap_tokens": self.overlap.value()}

    def reindexes(self) -> bool:
        """Whether saving means chunking and embedding the collection's documents again."""
        c = self.collection
        return c is not None and (self.model_path() != c.embedding_model_path
                                  or self.settings() != {**DEFAULT_SETTINGS, **c.settings})

    def _model_chosen(self, row: int) -> None:
        if self.model.itemData(row) == OTHER_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF embedding model", "", "GGUF models (*.gguf)")
            if path:
                self.model.blockSignals(True)
                self.model.insertItem(row, path, path)
                self.model.setCurrentIndex(row)
                self.model.blockSignals(False)
            else:
                self.model.setCurrentIndex(self._previous_model)
        self._previous_model = self.model.currentIndex()
        self._update()

    def _update(self) -> None:
        label = self.model.currentText()
        if "downloaded on first use" in label:
            self.about.setText("Multilingual: finds what you ask for in 200+ languages. Ember asks before it "
                               "downloads it (115 MB, Apache-2.0 licence), once, into your model library.")
        else:
            self.about.setText("Questions are embedded with the same model, so every document of the "
                               "collection is embedded with it.")
        if not self._overlap_ok():
            self.warning.setText(f"The overlap can be at most half a chunk ({self.chunk_tokens.value() // 2} tokens).")
        elif self.reindexes() and self.counts is not None and self.counts.documents:
            self.warning.setText(f"Saving embeds all {self.counts.documents} documents again "
                                 f"({self.counts.chunks} chunks now): vectors of different models or chunk "
                                 "sizes cannot be mixed. Until it is done, questions find only what is "
                                 "indexed again.")
        else:
            self.warning.setText("")
        self.ok_button.setText("Save and index again" if self.reindexes() else
                               "Create" if self.collection is None else "Save")
        self.ok_button.setEnabled(bool(self.name.text().strip()) and self._overlap_ok())

    def _overlap_ok(self) -> bool:
        return self.overlap.value() <= self.chunk_tokens.value() // 2  # the chunker's rule
