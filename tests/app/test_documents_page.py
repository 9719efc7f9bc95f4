"""The Documents page driven as a user does: make a collection, add a folder, watch it index (files,
chunks, speed), see each file's status and why one failed, look at how a file was cut, stop and
resume, let the watch pick up new, changed and deleted files, change the chunk size (everything is
embedded again), delete the collection. Real parts: the window, the parser child, the MiniLM host,
SQLite."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from app.views.collection_dialog import CollectionDialog
from app.views.documents_page import DocumentsPage
from tests.engine.test_rag_parse import write_pdf

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

PAGES = ["The harbour of Lisbon was rebuilt after the earthquake of 1755.",
         "Tram 28 climbs through the Alfama district past the cathedral.",
         "Pastel de nata is a custard tart first baked by monks in Belém."]


def open_documents(qtbot, window) -> DocumentsPage:
    window.nav.setCurrentRow(2)
    page = window.stack.currentWidget()
    assert isinstance(page, DocumentsPage)
    page.controller.watch_timer.setInterval(250)  # the watch, faster than a user needs it
    return page


def add_embedding_model(qtbot, window, model) -> None:
    with qtbot.waitSignal(window.library.library_changed, timeout=20000):
        window.library.add_file(str(model))


def make_collection(qtbot, page, name: str, model) -> int:
    qtbot.mouseClick(page.findChild(QAbstractButton, "createFirstCollectionButton")
                     if page.stack.currentIndex() == 0 else page.new_button, Qt.MouseButton.LeftButton)
    [dialog] = [d for d in page.findChildren(CollectionDialog) if d.isVisible()]
    dialog.name.setText(name)
    row = dialog.model.findData(str(model))
    assert row >= 0, "the embedding model in the library is offered"
    dialog.model.setCurrentIndex(row)
    assert "recommended" in dialog.model.itemText(0)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.current_id is not None and page.detail is not None
                    and page.detail.collection.name == name, timeout=5000)
    return page.current_id


def statuses(page) -> dict[str, str]:
    return {r.document.path.rsplit("/", 1)[-1]: r.status for r in page.documents_model.rows()}


def wait_idle(qtbot, page, timeout=120000) -> None:
    qtbot.waitUntil(lambda: page.controller.running_id is None and not page.controller.queue, timeout=timeout)


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "trips"
    docs.mkdir()
    write_pdf(docs / "lisbon.pdf", PAGES)
    (docs / "bread.md").write_text("# Bread\n\nA sourdough starter needs flour, water and a warm kitchen.\n",
                                   encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    return docs


def test_a_collection_indexes_a_folder_and_keeps_up_with_it(qtbot, window, folder, minilm_gguf):
    page = open_documents(qtbot, window)
    assert page.stack.currentIndex() == 0  # the empty state says what the page is for
    add_embedding_model(qtbot, window, minilm_gguf)
    collection_id = make_collection(qtbot, page, "Trips", minilm_gguf)
    assert page.collections.count() == 1 and "Trips" in page.collections.item(0).text()

    progress = []
    page.controller.index_progress.connect(lambda cid, p: progress.append(p))
    with qtbot.waitSignal(page.controller.index_finished, timeout=60000):
        page.add_paths([str(folder)])
    wait_idle(qtbot, page)
    assert any(getattr(p, "file", "") == "lisbon.pdf" for p in progress)  # the status line named the file
    assert progress[-1].done == progress[-1].total == 3
    assert page.findChild(QLabel, "indexStatus").text().startswith("Done in")
    qtbot.waitUntil(lambda: statuses(page) == {"bread.md": "indexed", "broken.pdf": "failed",
                                               "lisbon.pdf": "indexed"}, timeout=5000)
    rows = {r.document.path.rsplit("/", 1)[-1]: r for r in page.documents_model.rows()}
    assert rows["lisbon.pdf"].document.pages == 3 and rows["lisbon.pdf"].chunks == 3
    assert "PDF" in rows["broken.pdf"].document.error  # the reason, in the Details column
    assert "1 failed" in page.summary.text() and "all-MiniLM" in page.summary.text()

    # how lisbon.pdf was cut: a chunk per page, with its page
    page.documents.selectRow(page.documents_model.row_of(rows["lisbon.pdf"].document.id))
    page.tabs.setCurrentWidget(page.preview)
    assert page.preview.list.count() == 3 and "page 2" in page.preview.list.item(1).text()
    page.preview.list.setCurrentRow(1)
    assert "Tram 28" in page.preview.text.toPlainText()

    # the watch: a new file, a changed one and a deleted one are taken in without a click
    (folder / "tea.txt").write_text("Green tea is steeped at 80 degrees for two minutes.\n", encoding="utf-8")
    (folder / "bread.md").write_text("# Bread\n\nRye bread keeps for a week in a cloth bag.\n", encoding="utf-8")
    (folder / "broken.pdf").unlink()
    qtbot.waitUntil(lambda: statuses(page) == {"bread.md": "indexed", "lisbon.pdf": "indexed", "tea.txt": "indexed"},
                    timeout=30000)
    wait_idle(qtbot, page)
    texts = " ".join(c.text for r in page.documents_model.rows() for c in page.controller.chunks(r.document.id))
    assert "Rye bread" in texts and "sourdough" not in texts and "Green tea" in texts

    # the chat's settings panel lists the collection (the change notice reached the chat controller)
    assert [c.name for c in window.chat.collection_choices()] == ["Trips"]
    assert collection_id == page.current_id


FILES = 10  # of about ten chunks each: long enough a run to stop after the second


def test_stop_keeps_what_is_done_and_resume_goes_on(qtbot, window, tmp_path, minilm_gguf):
    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(FILES):
        (notes / f"note{n:02d}.txt").write_text(
            "\n\n".join(f"Note {n}, paragraph {p}: the ferry to island {n} leaves at {p} o'clock." for p in range(80)),
            encoding="utf-8")
    page = open_documents(qtbot, window)
    add_embedding_model(qtbot, window, minilm_gguf)
    make_collection(qtbot, page, "Notes", minilm_gguf)
    page.add_paths([str(notes)])
    qtbot.waitUntil(lambda: page.controller.running_id is not None, timeout=10000)
    stop = page.findChild(QAbstractButton, "stopIndexingButton")
    qtbot.waitUntil(lambda: stop.isVisible() and sum(s == "indexed" for s in statuses(page).values()) >= 2,
                    timeout=60000)
    with qtbot.waitSignal(page.controller.indexing_changed, timeout=30000, check_params_cb=lambda cid: cid is None):
        qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    page.controller.refresh_detail()
    done = sum(s == "indexed" for s in statuses(page).values())
    assert 2 <= done < FILES and all(s in ("indexed", "pending") for s in statuses(page).values())
    resume = page.findChild(QAbstractButton, "resumeIndexingButton")
    assert resume.isVisible() and not stop.isVisible() and "Stopped" in page.status.text()
    qtbot.wait(800)  # the watch runs meanwhile and must leave a stopped collection alone
    assert page.controller.running_id is None

    finished = []
    page.controller.index_finished.connect(lambda cid, report: finished.append(report))
    qtbot.mouseClick(resume, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    assert finished and finished[0].unchanged == done and finished[0].indexed == FILES - done
    page.controller.refresh_detail()
    assert set(statuses(page).values()) == {"indexed"}


def test_new_chunk_settings_embed_everything_again_and_delete_leaves_the_files(qtbot, window, folder, minilm_gguf,
                                                                              monkeypatch):
    page = open_documents(qtbot, window)
    add_embedding_model(qtbot, window, minilm_gguf)
    collection_id = make_collection(qtbot, page, "Trips", minilm_gguf)
    with qtbot.waitSignal(page.controller.index_finished, timeout=60000):
        page.add_paths([str(folder / "bread.md")])
    wait_idle(qtbot, page)

    dialog = page.open_settings()
    assert dialog.ok_button.text() == "Save"  # nothing changed yet
    dialog.chunk_tokens.setValue(128)
    assert dialog.ok_button.text() == "Save and index again"
    assert "embeds all 1 documents again" in dialog.warning.text()
    dialog.overlap.setValue(100)  # more than half a chunk: refused before it reaches the chunker
    assert not dialog.ok_button.isEnabled() and "half a chunk" in dialog.warning.text()
    dialog.overlap.setValue(16)
    reports = []
    page.controller.index_finished.connect(lambda cid, report: reports.append(report))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    assert reports and reports[-1].indexed == 1
    assert window.services.conn.execute("SELECT settings_json FROM collections WHERE id = ?",
                                        (collection_id,)).fetchone()[0] == '{"chunk_tokens": 128, "overlap_tokens": 16}'

    box = page.delete_current()
    qtbot.mouseClick(box.button(box.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.collections.count() == 0, timeout=5000)
    assert page.stack.currentIndex() == 0 and (folder / "bread.md").is_file()
    assert window.services.conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0


def test_the_recommended_model_is_downloaded_only_after_the_user_agrees_then_indexing_starts(
        qtbot, hub_server, window, folder, minilm_gguf):  # the Hub first: the window reads its address
    """The stand-in Hub serves MiniLM's bytes as the recommended file (with their SHA-256, as the Hub
    publishes it): no download before the click, the window's queue does it, indexing follows."""
    from engine.rag.embedding_models import RECOMMENDED

    hub_server.add_repo(RECOMMENDED.repo_id, {RECOMMENDED.filename: minilm_gguf}, license="apache-2.0")
    page = open_documents(qtbot, window)
    qtbot.mouseClick(page.first_button, Qt.MouseButton.LeftButton)
    dialog = page.findChild(CollectionDialog)
    dialog.name.setText("Trips")
    assert dialog.model.currentIndex() == 0 and "downloaded on first use" in dialog.model.currentText()
    assert "115 MB" in dialog.about.text() and "Apache-2.0" in dialog.about.text()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.current_id is not None, timeout=5000)

    page.add_paths([str(folder / "bread.md")])
    bar = page.findChild(QWidget, "embeddingModelBar")
    qtbot.waitUntil(lambda: bar.isVisible(), timeout=5000)
    assert "Granite Embedding" in bar.message.text() and "Apache-2.0" in bar.message.text()
    qtbot.wait(600)  # the watch ticks meanwhile: still nothing is downloaded or indexed without consent
    assert window.controllers.downloads.queue.items() == [] and page.controller.running_id is None
    assert "waiting for its embedding model" in page.collections.item(0).text()

    with qtbot.waitSignal(page.controller.index_finished, timeout=60000):
        qtbot.mouseClick(page.download_model_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page)
    [item] = window.controllers.downloads.queue.items()  # the Models page's Downloads tab lists it
    assert item.state == "done" and RECOMMENDED.present(window.services.paths) is not None
    page.controller.refresh_detail()
    assert statuses(page) == {"bread.md": "indexed"} and not bar.isVisible()


def test_every_control_of_the_page_has_a_name_for_testers_and_screen_readers(qtbot, window, minilm_gguf):
    from tests.app.test_main_window import INTERACTIVE, inside_composite

    page = open_documents(qtbot, window)
    add_embedding_model(qtbot, window, minilm_gguf)
    make_collection(qtbot, page, "Named", minilm_gguf)
    widgets = [w for kind in INTERACTIVE for w in page.findChildren(kind) if not inside_composite(w)]
    assert len(widgets) >= 15
    assert [f"{type(w).__name__} {w.objectName()!r} {w.accessibleName()!r}" for w in widgets
            if not (w.objectName() and w.accessibleName())] == []


def test_the_retrieval_bench_tab_follows_the_chosen_collection(qtbot, window, folder, minilm_gguf):
    page = open_documents(qtbot, window)
    add_embedding_model(qtbot, window, minilm_gguf)
    first = make_collection(qtbot, page, "Trips", minilm_gguf)
    second = make_collection(qtbot, page, "Bread", minilm_gguf)
    assert page.tabs.indexOf(page.bench) >= 0 and page.tabs.tabText(page.tabs.indexOf(page.bench)) == "Retrieval bench"
    assert page.bench.controller.collection_id == second
    page.collections.setCurrentRow([page.collections.item(r).data(Qt.ItemDataRole.UserRole)
                                    for r in range(page.collections.count())].index(first))
    assert page.bench.controller.collection_id == first


def test_a_folder_dropped_on_the_empty_page_makes_a_collection_named_after_it(qtbot, window, folder, minilm_gguf):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    page = open_documents(qtbot, window)
    add_embedding_model(qtbot, window, minilm_gguf)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    drop = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    page.dropEvent(drop)  # as Qt delivers it at the end of a drag (sendEvent needs a drag in progress)
    [dialog] = [d for d in page.findChildren(CollectionDialog) if d.isVisible()]
    assert dialog.name.text() == "trips"  # named after the folder; the user may change it
    dialog.model.setCurrentIndex(dialog.model.findData(str(minilm_gguf)))
    with qtbot.waitSignal(page.controller.index_finished, timeout=60000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert [s.path for s in page.detail.sources] == [str(folder)]
