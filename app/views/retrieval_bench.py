"""The retrieval bench panel: questions written from a collection's chunks, reviewed, then each retrieval
mode scored on them (a tab of the Documents page).

Top: how many questions to write, Write questions, Stop, and what is happening. Middle: the pairs,
one per row: Keep (a check box; half-checked while a draft is not reviewed yet), the question and the
answer (edit in place), the source they were written from, and after scoring the rank each mode gave
that source (1 = first; "> 10" not in the first 10). Bottom: Score, and the figures per mode with the
winner in words.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controllers.bench_controller import BenchController
from app.views.widgets import named
from engine.errors import EmberError
from engine.rag.bench import KS, MAX_PAIRS, MODE_NAMES, BenchReport, WriteReport
from engine.rag.retrieve import MODES
from engine.store.qa_repo import QAPair

KEEP, QUESTION, ANSWER, SOURCE = range(4)
PAIR_COLUMNS = ("Keep", "Question", "Answer", "Source", *(MODE_NAMES[m] for m in MODES))
RESULT_COLUMNS = (*(f"Recall@{k}" for k in KS), "MRR")
CHECK = {"kept": Qt.CheckState.Checked, "dropped": Qt.CheckState.Unchecked, "draft": Qt.CheckState.PartiallyChecked}
REVIEW_WORDS = {"kept": "kept", "dropped": "dropped", "draft": "draft, not reviewed yet"}
DEFAULT_COUNT = 10
PairIdRole = Qt.ItemDataRole.UserRole + 1


def rank_text(ranks: dict | None, mode: str, missing: bool) -> str:
    if ranks is None:
        return ""
    if missing:
        return "gone"
    rank = ranks.get(mode)
    return f"> {max(KS)}" if rank is None else str(rank)


def written_text(report: WriteReport) -> str:
    """What a writing run did, in words."""
    n = len(report.pairs)
    text = (f"{n} question{'s' if n != 1 else ''} written from {report.chunks_asked} "
            f"passage{'s' if report.chunks_asked != 1 else ''}.")
    if report.unreadable:
        text += f" For {report.unreadable}, the model's reply held no usable question."
    if n == 0 and report.chunks_asked:
        text += " Try again, or load a larger chat model."
    if report.stopped:
        text += " Stopped."
    return text


class RetrievalBenchPanel(QWidget):
    error_shown = Signal(object)  # EmberError (the panel shows it too)

    def __init__(self, controller: BenchController, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("retrievalBenchPanel")
        self.controller = controller
        self._filling = False
        self._ids: list[int] = []  # the pair id of each row
        self._ranks: dict[int, tuple[dict, bool]] = {}  # pair id -> (ranks by mode, passage gone)
        layout = QVBoxLayout(self)
        layout.addLayout(self._write_row())
        self.message_label = named(QLabel(""), "benchMessageLabel", "The bench's last result or error")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()
        layout.addWidget(self.message_label)
        layout.addWidget(self._pairs_box(), 1)
        layout.addWidget(self._results_box())
        self._connect()
        self.show_collection(None)

    # --- building ---------------------------------------------------------------------------------
    def _write_row(self):
        row = QHBoxLayout()
        self.count_spin = named(QSpinBox(), "benchCountSpin", "How many questions to write")
        self.count_spin.setRange(1, MAX_PAIRS)
        self.count_spin.setValue(DEFAULT_COUNT)
        self.write_button = named(QPushButton("Write questions"), "benchWriteButton", "Write questions",
                                  "The loaded chat model writes a question and a short answer about sampled "
                                  "passages of this collection")
        self.stop_button = named(QPushButton("Stop"), "benchStopButton", "Stop")
        row.addWidget(QLabel("Questions:"))
        row.addWidget(self.count_spin)
        row.addWidget(self.write_button)
        row.addWidget(self.stop_button)
        self.progress_label = named(QLabel(""), "benchProgressLabel", "What the bench is doing")
        row.addWidget(self.progress_label, 1)
        return row

    def _pairs_box(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.counts_label = named(QLabel(""), "benchCountsLabel", "How many questions")
        self.table = named(QTableWidget(0, len(PAIR_COLUMNS)), "benchPairsTable", "Questions and answers")
        self.table.setHorizontalHeaderLabels(PAIR_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(QUESTION, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(ANSWER, QHeaderView.ResizeMode.Stretch)
        row = QHBoxLayout()
        self.keep_drafts_button = named(QPushButton("Keep all drafts"), "benchKeepDraftsButton",
                                        "Keep every question not reviewed yet")
        row.addWidget(self.counts_label, 1)
        row.addWidget(self.keep_drafts_button)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        return box

    def _results_box(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.score_button = named(QPushButton("Score"), "benchScoreButton", "Score the retrieval modes",
                                  "Search with every kept question in each mode and count where its passage came")
        self.drafts_check = named(QCheckBox("Include drafts"), "benchIncludeDraftsCheck",
                                  "Score the questions not reviewed yet too")
        row.addWidget(self.score_button)
        row.addWidget(self.drafts_check)
        row.addStretch(1)
        self.results = named(QTableWidget(len(MODES), len(RESULT_COLUMNS)), "benchResultsTable",
                             "Recall and MRR per retrieval mode")
        self.results.setHorizontalHeaderLabels(RESULT_COLUMNS)
        self.results.setVerticalHeaderLabels([MODE_NAMES[m] for m in MODES])
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.results.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.results.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        self.results.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.winner_label = named(QLabel(""), "benchWinnerLabel", "Which retrieval mode wins")
        self.winner_label.setWordWrap(True)
        layout.addLayout(row)
        layout.addWidget(self.results)
        layout.addWidget(self.winner_label)
        return box

    def _connect(self) -> None:
        c = self.controller
        self.write_button.clicked.connect(self._write)
        self.stop_button.clicked.connect(c.stop)
        self.score_button.clicked.connect(lambda: self._start(lambda: c.score(self.drafts_check.isChecked())))
        self.keep_drafts_button.clicked.connect(c.keep_drafts)
        self.table.itemChanged.connect(self._on_item_changed)
        c.pairs_changed.connect(self._fill)
        c.progress.connect(self.progress_label.setText)
        c.busy_changed.connect(lambda _busy: self._update_buttons())
        c.written.connect(lambda report: self._say(written_text(report)))
        c.report_ready.connect(self._show_report)
        c.error.connect(self._show_error)

    # --- the controller's side --------------------------------------------------------------------
    def show_collection(self, collection_id: int | None) -> None:
        self._say("")
        self.controller.show_collection(collection_id)
        self._update_buttons()

    def _write(self) -> None:
        self._start(lambda: self.controller.write(self.count_spin.value()))

    def _start(self, action) -> None:
        self._say("")
        action()

    def _say(self, text: str) -> None:
        """The last result or error, under the buttons; hidden when there is none."""
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))

    def _show_error(self, error: EmberError) -> None:
        self._say(error.message + (f"\n{error.hint}" if error.hint else ""))
        self.error_shown.emit(error)

    def _update_buttons(self) -> None:
        shown = self.controller.collection_id is not None
        busy = self.controller.busy
        for widget in (self.write_button, self.count_spin, self.score_button, self.keep_drafts_button,
                       self.drafts_check):
            widget.setEnabled(shown and not busy)
        self.stop_button.setEnabled(busy)
        self.table.setEnabled(shown)

    # --- the pairs --------------------------------------------------------------------------------
    def _fill(self, pairs: list[QAPair]) -> None:
        """Show the pairs. Rows that are still there are updated in place (an open editor survives the
        drafts that a running writer adds below it)."""
        ids = [p.id for p in pairs]
        self._filling = True
        try:
            if ids[: len(self._ids)] != self._ids:
                self.table.setRowCount(0)
                self._ids = []
            self.table.setRowCount(len(pairs))
            for row, pair in enumerate(pairs):
                self._set_row(row, pair, new=row >= len(self._ids))
            self._ids = ids
        finally:
            self._filling = False
        counts = {status: sum(1 for p in pairs if p.status == status) for status in CHECK}
        self.counts_label.setText(f"{len(pairs)} question{'s' if len(pairs) != 1 else ''}: {counts['kept']} kept, "
                                  f"{counts['draft']} draft{'s' if counts['draft'] != 1 else ''}, "
                                  f"{counts['dropped']} dropped" if pairs else
                                  "No questions yet: write some, then keep the good ones.")

    def _set_row(self, row: int, pair: QAPair, new: bool) -> None:
        if new:
            keep = QTableWidgetItem()
            keep.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable)
            self.table.setItem(row, KEEP, keep)
            for column in (QUESTION, ANSWER):
                self.table.setItem(row, column, QTableWidgetItem())
            for column in range(SOURCE, len(PAIR_COLUMNS)):
                item = QTableWidgetItem()
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(row, column, item)
        keep = self.table.item(row, KEEP)
        keep.setData(PairIdRole, pair.id)
        keep.setCheckState(CHECK[pair.status])
        keep.setToolTip(REVIEW_WORDS[pair.status])
        keep.setData(Qt.ItemDataRole.AccessibleTextRole, REVIEW_WORDS[pair.status])
        self.table.item(row, QUESTION).setText(pair.question)
        self.table.item(row, ANSWER).setText(pair.answer)
        source = self.table.item(row, SOURCE)
        source.setText(pair.location)
        source.setToolTip(pair.chunk_text[:1000])
        ranks, missing = self._ranks.get(pair.id, (None, False))
        for offset, mode in enumerate(MODES):
            self.table.item(row, SOURCE + 1 + offset).setText(rank_text(ranks, mode, missing))

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or not 0 <= item.row() < len(self._ids):
            return
        pair_id = self._ids[item.row()]
        if item.column() == KEEP:
            state = item.checkState()
            if state != Qt.CheckState.PartiallyChecked:
                self.controller.set_status([pair_id], "kept" if state == Qt.CheckState.Checked else "dropped")
        elif item.column() == QUESTION:
            self.controller.edit(pair_id, question=item.text())
        elif item.column() == ANSWER:
            self.controller.edit(pair_id, answer=item.text())

    # --- the report -------------------------------------------------------------------------------
    def _show_report(self, report: BenchReport | None) -> None:
        self._ranks = {p.pair_id: (p.ranks, p.missing) for p in report.pairs} if report else {}
        bold = QFont()
        bold.setBold(True)
        for row, mode in enumerate(MODES):
            score = report.score_of(mode) if report else None
            values = [*(score.recall[k] for k in KS), score.mrr] if score else [None] * len(RESULT_COLUMNS)
            for column, value in enumerate(values):
                item = QTableWidgetItem("" if value is None else f"{value:.2f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if report and mode in (report.winner, *report.tied):
                    item.setFont(bold)
                self.results.setItem(row, column, item)
        self.results.setCurrentCell(-1, -1)
        drafts = " Drafts were included." if report and report.included_drafts else ""
        self.winner_label.setText(report.summary() + drafts if report else "")
        self.controller.refresh()  # the ranks per question
