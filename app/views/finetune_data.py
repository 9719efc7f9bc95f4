"""The Fine-tune page's data tab: what the model learns from, in which form, and a preview of it.

Three modes. *Questions and answers* (recommended): the passages of files or a collection, the chat
model drafts paraphrased question/answer pairs, the user reviews them in the table (edit, untick to
drop) and may add the collection's reviewed retrieval-bench questions or a pairs file. *Plain text*:
the passages themselves (continued pre-training). *Chat data*: the user's JSONL in OpenAI `messages`
format. Then a held-out share, a share of general text mixed in (so the model keeps what it knew),
and the probe questions watched during training; Preview builds the dataset and shows it.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.views.widgets import named
from engine.errors import EmberError
from engine.finetune.chat_data import read_pairs_jsonl
from engine.finetune.dataset import Dataset

MODES = (("qa", "Questions and answers (recommended)"), ("raw", "Plain text (continued pre-training)"),
         ("chat", "My chat data (JSONL, OpenAI messages)"))


class DataSection(QWidget):
    read_files = Signal(list)  # paths
    read_collection = Signal(int)
    write_pairs = Signal(int)  # pairs per passage
    preview = Signal()
    error_shown = Signal(object)  # EmberError (a pairs file that cannot be read)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.passages: list = []
        self.problems: dict[str, str] = {}
        self.mode_buttons = QButtonGroup(self)
        mode_box = QGroupBox("What the model learns from")
        mode_layout = QVBoxLayout(mode_box)
        for key, label in MODES:
            button = named(QRadioButton(label), f"mode_{key}Radio", label)
            button.setProperty("mode", key)
            self.mode_buttons.addButton(button)
            mode_layout.addWidget(button)
        self.mode_buttons.buttons()[0].setChecked(True)

        self.source_box = QGroupBox("Documents")
        source = QVBoxLayout(self.source_box)
        row = QHBoxLayout()
        self.use_files = named(QRadioButton("Files and folders (text, Markdown)"), "useFilesRadio", "Use files")
        self.use_collection = named(QRadioButton("A collection"), "useCollectionRadio", "Use a collection")
        self.use_files.setChecked(True)
        self.collection = named(QComboBox(), "finetuneCollectionCombo", "Collection")
        for widget in (self.use_files, self.use_collection, self.collection):
            row.addWidget(widget)
        row.addStretch(1)
        self.files = named(QListWidget(), "finetuneFilesList", "Files to learn from")
        self.files.setMaximumHeight(70)
        files_row = QHBoxLayout()
        self.add_files = named(QPushButton("Add files…"), "finetuneAddFilesButton", "Add files")
        self.add_folder = named(QPushButton("Add folder…"), "finetuneAddFolderButton", "Add a folder")
        self.read_button = named(QPushButton("Read"), "readSourcesButton", "Read the documents")
        self.passages_label = named(QLabel("Nothing read yet."), "passagesLabel", "What was read")
        self.passages_label.setWordWrap(True)
        for widget in (self.add_files, self.add_folder, self.read_button):
            files_row.addWidget(widget)
        files_row.addWidget(self.passages_label, 1)
        source.addLayout(row)
        source.addWidget(self.files)
        source.addLayout(files_row)

        self.pairs_box = QGroupBox("Questions and answers (review: edit, untick to leave one out)")
        pairs = QVBoxLayout(self.pairs_box)
        pairs_row = QHBoxLayout()
        self.per_passage = named(QSpinBox(), "pairsPerPassageSpin", "Questions per passage")
        self.per_passage.setRange(1, 10)
        self.per_passage.setValue(3)
        self.write_button = named(QPushButton("Write questions"), "writePairsButton",
                                  "Write questions with the loaded chat model")
        self.bench_button = named(QPushButton("Add the collection's reviewed questions"), "addBenchPairsButton",
                                  "Add the retrieval bench's kept questions")
        self.pairs_file_button = named(QPushButton("Add a pairs file…"), "addPairsFileButton",
                                       "Add question and answer pairs from a JSONL file")
        pairs_row.addWidget(QLabel("Per passage:"))
        for widget in (self.per_passage, self.write_button, self.bench_button, self.pairs_file_button):
            pairs_row.addWidget(widget)
        pairs_row.addStretch(1)
        self.pairs = named(QTableWidget(0, 3), "pairsTable", "Question and answer pairs")
        self.pairs.setHorizontalHeaderLabels(["Question", "Answer", "From"])
        self.pairs.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.pairs.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.pairs.verticalHeader().hide()
        self.pairs.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        pairs.addLayout(pairs_row)
        pairs.addWidget(self.pairs, 1)

        self.chat_box = QGroupBox("Chat data")
        chat = QVBoxLayout(self.chat_box)
        chat_format = QLabel('One conversation a line, in the OpenAI messages format: {"messages": [{"role": "user", '
                             '"content": "…"}, {"role": "assistant", "content": "…"}]}; a system message may come '
                             "first. The model learns the assistant's replies.")
        chat_format.setWordWrap(True)
        self.chat_files = named(QListWidget(), "chatFilesList", "Chat data files")
        self.add_chat_file = named(QPushButton("Add JSONL…"), "addChatFileButton", "Add chat data files")
        chat_row = QHBoxLayout()
        chat_row.addWidget(self.chat_files, 1)
        chat_row.addWidget(self.add_chat_file, 0, Qt.AlignmentFlag.AlignTop)
        chat.addWidget(chat_format)
        chat.addLayout(chat_row, 1)

        options = QFormLayout()
        self.held_out = named(QSpinBox(), "heldOutSpin", "Held-out share in percent")
        self.held_out.setRange(0, 50)
        self.held_out.setValue(10)
        self.held_out.setSuffix(" %")
        self.general = named(QSpinBox(), "generalTextSpin", "General text mixed in, in percent")
        self.general.setRange(0, 80)
        self.general.setValue(20)
        self.general.setSuffix(" %")
        self.general.setToolTip("General text mixed in, so the model does not forget what it knew.")
        self.probes = named(QPlainTextEdit(), "probesEdit", "Probe questions, one a line")
        self.probes.setPlaceholderText("Questions to watch during training, one a line (empty: taken from the data)")
        self.probes.setMaximumHeight(56)
        options.addRow("Held out for evaluation", self.held_out)
        options.addRow("General text mixed in", self.general)
        options.addRow("Probe questions", self.probes)
        self.preview_button = named(QPushButton("Preview the dataset"), "previewDatasetButton", "Preview the dataset")
        self.preview_text = named(QTextBrowser(), "datasetPreview", "The dataset")
        self.preview_text.setMaximumHeight(150)

        layout = QVBoxLayout(self)
        layout.addWidget(mode_box)
        layout.addWidget(self.source_box)
        layout.addWidget(self.chat_box)
        layout.addWidget(self.pairs_box, 1)
        layout.addLayout(options)
        layout.addWidget(self.preview_button)
        layout.addWidget(self.preview_text)
        self.mode_buttons.buttonToggled.connect(lambda *_: self._update())
        self.use_files.toggled.connect(lambda *_: self._update())
        self.add_files.clicked.connect(self._add_files)
        self.add_folder.clicked.connect(self._add_folder)
        self.add_chat_file.clicked.connect(self._add_chat_file)
        self.pairs_file_button.clicked.connect(self._add_pairs_file)
        self.read_button.clicked.connect(self._read)
        self.write_button.clicked.connect(lambda: self.write_pairs.emit(self.per_passage.value()))
        self.preview_button.clicked.connect(self.preview)
        self._update()

    # --- state ---------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_buttons.checkedButton().property("mode")

    def set_mode(self, mode: str) -> None:
        next(b for b in self.mode_buttons.buttons() if b.property("mode") == mode).setChecked(True)

    def set_collections(self, collections: list) -> None:
        self.collection.clear()
        for collection in collections:
            self.collection.addItem(collection.name, collection.id)
        self.use_collection.setEnabled(bool(collections))
        self._update()

    def _update(self) -> None:
        mode = self.mode
        self.source_box.setVisible(mode in ("qa", "raw"))
        self.pairs_box.setVisible(mode == "qa")
        self.chat_box.setVisible(mode == "chat")
        from_files = self.use_files.isChecked()
        for widget in (self.files, self.add_files, self.add_folder):
            widget.setEnabled(from_files)
        self.collection.setEnabled(not from_files)
        self.bench_button.setEnabled(not from_files and self.collection.count() > 0)

    # --- sources -------------------------------------------------------------------------------------
    def add_paths(self, paths: list[str]) -> None:
        for path in paths:
            if path and not self.files.findItems(path, Qt.MatchFlag.MatchExactly):
                self.files.addItem(path)

    def file_paths(self) -> list[str]:
        return [self.files.item(i).text() for i in range(self.files.count())]

    def chat_paths(self) -> list[str]:
        return [self.chat_files.item(i).text() for i in range(self.chat_files.count())]

    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Documents to learn from", "", "Text (*.txt *.md *.markdown *.rst)")
        self.add_paths(paths)

    def _add_folder(self) -> None:
        self.add_paths([QFileDialog.getExistingDirectory(self, "A folder to learn from")])

    def add_chat_paths(self, paths: list[str]) -> None:
        """Chat JSONL files to train on, each once."""
        for path in paths:
            if path and not self.chat_files.findItems(path, Qt.MatchFlag.MatchExactly):
                self.chat_files.addItem(path)

    def _add_chat_file(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Chat data", "", "JSON lines (*.jsonl)")
        self.add_chat_paths(paths)

    def _read(self) -> None:
        if self.use_files.isChecked():
            self.read_files.emit(self.file_paths())
        elif self.collection.currentData() is not None:
            self.read_collection.emit(self.collection.currentData())

    def show_passages(self, report) -> None:
        self.passages, self.problems = list(report.passages), dict(report.problems)
        n, files = len(self.passages), report.files_read
        text = f"{n} passage{'s' if n != 1 else ''} from {files} file{'s' if files != 1 else ''}."
        if report.problems:
            text += " Not used: " + "; ".join(f"{Path(p).name} ({why})" for p, why in list(report.problems.items())[:3])
        self.passages_label.setText(text)

    # --- pairs ---------------------------------------------------------------------------------------
    def add_pairs(self, pairs, source: str = "") -> None:
        """Rows for pairs (QAPair objects or (question, answer) tuples), ticked."""
        for pair in pairs:
            question, answer, where = ((pair.question, pair.answer, pair.source) if hasattr(pair, "question")
                                       else (pair[0], pair[1], source))
            row = self.pairs.rowCount()
            self.pairs.insertRow(row)
            first = QTableWidgetItem(question)
            first.setFlags(first.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            first.setCheckState(Qt.CheckState.Checked)
            self.pairs.setItem(row, 0, first)
            self.pairs.setItem(row, 1, QTableWidgetItem(answer))
            origin = QTableWidgetItem(where)
            origin.setFlags(origin.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.pairs.setItem(row, 2, origin)

    def kept_pairs(self) -> list[tuple[str, str]]:
        kept = []
        for row in range(self.pairs.rowCount()):
            question, answer = self.pairs.item(row, 0), self.pairs.item(row, 1)
            if question.checkState() == Qt.CheckState.Checked and question.text().strip() and answer.text().strip():
                kept.append((question.text().strip(), answer.text().strip()))
        return kept

    def _add_pairs_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Question and answer pairs", "", "JSON lines (*.jsonl)")
        if path:
            try:
                self.add_pairs(read_pairs_jsonl(path), Path(path).name)
            except EmberError as error:
                self.error_shown.emit(error)

    # --- preview -------------------------------------------------------------------------------------
    def probe_questions(self) -> list[str]:
        return [line.strip() for line in self.probes.toPlainText().splitlines() if line.strip()]

    def show_dataset(self, built: Dataset) -> None:
        preview = built.preview(8)
        c = preview.counts
        lines = [f"<b>{c.train} training examples</b> ({c.general} of them general text) and "
                 f"<b>{c.held_out} held out</b>; {c.duplicates} duplicates and {c.too_short} too short left out. "
                 f"Lengths {preview.min_chars}–{preview.max_chars} characters (mean {preview.mean_chars:.0f})."]
        lines += [f"<p style='margin:2px'>• {html.escape(text)}</p>" for text in preview.first]
        self.preview_text.setHtml("".join(lines))
