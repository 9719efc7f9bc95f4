"""The Fine-tune page's Evaluate tab: the job's held-out and probe questions and a few general ones,
asked of the base model, the base with the documents, the adapter and the adapter with the
documents, side by side. Each column's header carries its score; a cell is green when the answer
holds the reference's content words, red when it does not, plain for a probe question (no reference).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.views.colors import text_color
from app.views.widgets import named
from engine.finetune.evaluate import COLUMNS, RIGHT_SHARE

KIND_WORDS = {"held-out": "held-out", "probe": "probe", "general": "general knowledge"}


class EvaluationView(QWidget):
    run_requested = Signal(object, float, bool)  # collection id (None: no documents), strength, general questions

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluationView")
        self.collection = named(QComboBox(), "evaluationCollectionCombo", "Documents for the '+ documents' columns")
        self.scale = named(QDoubleSpinBox(), "evaluationScaleSpin", "Adapter strength for the evaluation")
        self.scale.setRange(0.0, 4.0)
        self.scale.setSingleStep(0.1)
        self.scale.setValue(1.0)
        self.general = named(QCheckBox("General questions (forgetting)"), "evaluationGeneralCheck",
                             "Also ask general-knowledge questions")
        self.general.setChecked(True)
        self.run_button = named(QPushButton("Ask the questions"), "runEvaluationButton", "Run the evaluation")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Documents:"))
        controls.addWidget(self.collection, 1)
        controls.addWidget(QLabel("Strength:"))
        controls.addWidget(self.scale)
        controls.addWidget(self.general)
        controls.addWidget(self.run_button)
        self.summary = named(QLabel("Ask the questions to compare the base model and the adapter, with and without "
                                    "your documents."), "evaluationSummary", "Evaluation summary")
        self.summary.setWordWrap(True)
        self.table = named(QTableWidget(0, 2 + len(COLUMNS)), "evaluationTable", "Answers per model")
        self.table.setHorizontalHeaderLabels(["Question", "Reference", *COLUMNS])
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        for column in range(self.table.columnCount()):
            self.table.setColumnWidth(column, 200)
        rule = QLabel(f"An answer counts as right when it holds at least {int(RIGHT_SHARE * 100)} % of the "
                      "reference's content words; read the answers to judge for yourself.")
        rule.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(rule)
        self.run_button.clicked.connect(lambda: self.run_requested.emit(
            self.collection.currentData(), self.scale.value(), self.general.isChecked()))

    def set_collections(self, collections) -> None:
        self.collection.clear()
        self.collection.addItem("None (no '+ documents' columns)", None)
        for collection in collections:
            self.collection.addItem(collection.name, collection.id)

    def show_result(self, result) -> None:
        """Fill the table and the headers with the scores of an Evaluation."""
        headers = ["Question", "Reference"]
        for column in result.columns:
            score = result.score(column)
            headers.append(f"{column}  {score[0]}/{score[1]}" if score and score[1] else
                           f"{column}  (not run)" if score is None else column)
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(0)
        for row in result.rows:
            index = self.table.rowCount()
            self.table.insertRow(index)
            q = row.question
            self.table.setItem(index, 0, _item(f"{q.question}\n({KIND_WORDS.get(q.kind, q.kind)})"))
            self.table.setItem(index, 1, _item(q.reference or "—"))
            for offset, column in enumerate(result.columns):
                if column in result.not_run:
                    cell = _item(f"not run: {result.not_run[column]}")
                    cell.setForeground(text_color("muted"))
                else:
                    cell = _item(row.answers.get(column, ""))
                    if column in row.right:
                        cell.setForeground(text_color("success" if row.right[column] else "error"))
                        cell.setToolTip(("right" if row.right[column] else "wrong") + f": {cell.text()}")
                self.table.setItem(index, 2 + offset, cell)
        self.table.resizeRowsToContents()
        self.summary.setText(summary_text(result))


def summary_text(result) -> str:
    """Learning (held-out) and forgetting (general) in one line each, base against adapter."""
    lines = []
    for kind, word in (("held-out", "Learning (held-out questions)"), ("general", "Forgetting (general questions)")):
        base, tuned = result.score_by_kind("base", kind), result.score_by_kind("adapter", kind)
        if base[1]:
            lines.append(f"{word}: base {base[0]}/{base[1]}, adapter {tuned[0]}/{tuned[1]}.")
    lines.append(f"{len(result.rows)} questions in {result.seconds:.0f} s.")
    return " ".join(lines)


def _item(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    item.setToolTip(text)
    return item
