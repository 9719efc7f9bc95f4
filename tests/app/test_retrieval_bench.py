"""The retrieval bench panel with real widgets, SQLite and the session's real hosts (MiniLM for scoring,
SmolLM2 as the loaded chat model): pairs are shown, edited in place, kept and dropped; Score fills
the table per mode and names the winner, counting only the kept pairs; writing without a chat model
says what to do; with one, drafts appear, and Stop stops."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from app.controllers.bench_controller import BenchController
from app.services import Services
from app.views.retrieval_bench import ANSWER, KEEP, QUESTION, SOURCE, RetrievalBenchPanel
from app.workers import WorkerRunner
from engine.paths import EmberPaths
from engine.runtime.registry import LoadedModel
from engine.store.qa_repo import QARepository
from tests.engine.test_rag_bench import pair_for, topics

pytestmark = pytest.mark.timeout(120)
WAIT_MS = 60_000


@pytest.fixture
def bench(qtbot, ember_home, embedding_host, minilm_gguf):
    """The panel on its own controller, with the session's embedding host registered as the window's."""
    services = Services(EmberPaths(ember_home))
    services.hosts.put(LoadedModel("embedding", embedding_host, str(minilm_gguf)))
    runner = WorkerRunner()
    controller = BenchController(services, runner)
    panel = RetrievalBenchPanel(controller)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel
    assert runner.shutdown(30)
    for role in ("chat", "embedding"):  # the session's hosts outlive this test
        services.hosts.take(role)
    services.close()


def seed(panel, embedding_client, minilm_gguf) -> tuple[int, list[int]]:
    conn = panel.controller.services.conn
    collection, chunks = topics(conn, embedding_client, minilm_gguf, ["sourdough", "chess", "espresso", "marathon",
                                                                        "cats"])
    pairs = QARepository(conn).add_pairs(collection.id, [
        pair_for(chunks["sourdough"], "/topics/sourdough.txt", "sourdough starter flour", "Every day."),
        pair_for(chunks["chess"], "/topics/chess.txt", "castling king rook squares", "If neither moved."),
        pair_for(chunks["espresso"], "/topics/espresso.txt", "What is on top of an espresso?", "Crema.")])
    return collection.id, [p.id for p in pairs]


def cell(panel, row: int, column: int) -> str:
    return panel.table.item(row, column).text()


def test_review_then_score_names_the_winner_on_the_kept_pairs(qtbot, bench, embedding_client, minilm_gguf):
    panel = bench
    collection_id, ids = seed(panel, embedding_client, minilm_gguf)
    panel.show_collection(collection_id)
    assert panel.table.rowCount() == 3 and cell(panel, 0, SOURCE) == "sourdough.txt, lines 1–3"
    assert all(panel.table.item(r, KEEP).checkState() == Qt.CheckState.PartiallyChecked for r in range(3))
    assert "3 questions: 0 kept, 3 drafts" in panel.counts_label.text()

    # edit a question in place, as a user does: select it, F2, type, Enter
    panel.table.setFocus()
    panel.table.setCurrentCell(2, QUESTION)
    qtbot.keyClick(panel.table, Qt.Key.Key_F2)
    editor = panel.table.findChild(QLineEdit)
    assert editor is not None and editor.isVisible()
    editor.selectAll()
    qtbot.keyClicks(editor, "espresso crema pressure")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qa = QARepository(panel.controller.services.conn)
    qtbot.waitUntil(lambda: qa.get(ids[2]).question != "What is on top of an espresso?")  # Qt commits queued
    assert qa.get(ids[2]).question == "espresso crema pressure" and cell(panel, 2, QUESTION) == "espresso crema pressure"
    assert qa.get(ids[2]).answer == "Crema."

    # an empty question is refused, said, and the stored one comes back
    panel.table.item(1, QUESTION).setText("   ")
    assert "cannot be empty" in panel.message_label.text() and cell(panel, 1, QUESTION) == "castling king rook squares"
    panel.table.item(1, ANSWER).setText("Only if neither piece moved before.")
    assert qa.get(ids[1]).answer == "Only if neither piece moved before."

    qtbot.mouseClick(panel.keep_drafts_button, Qt.MouseButton.LeftButton)
    assert {p.status for p in qa.list_pairs(collection_id)} == {"kept"}
    panel.table.item(0, KEEP).setCheckState(Qt.CheckState.Unchecked)  # what a click on the box does
    assert qa.get(ids[0]).status == "dropped" and "2 kept, 0 drafts, 1 dropped" in panel.counts_label.text()

    with qtbot.waitSignal(panel.controller.report_ready, timeout=WAIT_MS,
                          check_params_cb=lambda report: report is not None) as scored:
        qtbot.mouseClick(panel.score_button, Qt.MouseButton.LeftButton)
    report = scored.args[0]
    assert [p.pair_id for p in report.pairs] == ids[1:]  # the dropped pair is not counted
    assert "on 2 questions" in panel.winner_label.text() and ("wins" in panel.winner_label.text()
                                                              or "tie" in panel.winner_label.text())
    assert panel.results.item(1, 2).text() == f"{report.score_of('bm25').recall[5]:.2f}"  # BM25, recall@5
    assert panel.results.item(1, 0).text() == "1.00"  # the distinctive words are BM25's first hit
    assert panel.results.item(0, 0).font().bold() == (report.winner == "hybrid" or "hybrid" in report.tied)
    assert cell(panel, 1, SOURCE + 2) == "1" and cell(panel, 0, SOURCE + 2) == ""  # BM25 ranks; the dropped one blank
    qtbot.waitUntil(lambda: panel.score_button.isEnabled())

    panel.show_collection(None)
    assert panel.table.rowCount() == 0 and not panel.score_button.isEnabled() and panel.winner_label.text() == ""


def test_writing_needs_a_loaded_chat_model(qtbot, bench, embedding_client, minilm_gguf):
    panel = bench
    collection_id, _ = seed(panel, embedding_client, minilm_gguf)
    panel.show_collection(collection_id)
    with qtbot.waitSignal(panel.error_shown) as shown:
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    assert "Load a chat model on the Chat page first" in shown.args[0].message
    assert "Load a chat model on the Chat page first" in panel.message_label.text()
    assert not panel.controller.busy


def test_nothing_kept_says_so_without_starting_work(qtbot, bench, embedding_client, minilm_gguf):
    panel = bench
    collection_id, _ = seed(panel, embedding_client, minilm_gguf)
    panel.show_collection(collection_id)
    qtbot.mouseClick(panel.score_button, Qt.MouseButton.LeftButton)
    assert "None of the 3 questions" in panel.message_label.text() and not panel.controller.busy


@pytest.mark.slow
def test_the_loaded_chat_model_writes_drafts_and_stop_stops(qtbot, bench, embedding_client, minilm_gguf,
                                                            shared_host, smollm2_path):
    panel = bench
    panel.controller.services.hosts.put(LoadedModel("chat", shared_host, str(smollm2_path)))
    collection_id, ids = seed(panel, embedding_client, minilm_gguf)
    panel.show_collection(collection_id)
    panel.count_spin.setValue(1)
    with qtbot.waitSignal(panel.controller.written, timeout=WAIT_MS) as done:
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
        assert panel.stop_button.isEnabled() and not panel.write_button.isEnabled()
    report = done.args[0]
    assert len(report.pairs) == 1 and "1 question written from" in panel.message_label.text()
    assert panel.table.rowCount() == 4  # the new draft, about a chunk no pair was written from
    assert cell(panel, 3, SOURCE) in ("marathon.txt, lines 1–3", "cats.txt, lines 1–3")
    assert cell(panel, 3, QUESTION) == report.pairs[0].question
    assert panel.table.item(3, KEEP).checkState() == Qt.CheckState.PartiallyChecked
    qtbot.waitUntil(lambda: not panel.controller.busy)

    QARepository(panel.controller.services.conn).delete([p.id for p in report.pairs])
    with qtbot.waitSignal(panel.controller.busy_changed, timeout=WAIT_MS, check_params_cb=lambda busy: not busy):
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert "Stopped." in panel.message_label.text() and panel.write_button.isEnabled()
