"""Chat with documents, as a user does it: tick a collection in the chat's settings, ask, and the reply
lists its sources; a click on one shows the passage, "Open the document here" shows the PDF page with
the passage marked, and "Why this source?" opens the inspector with every retrieved chunk and its ranks. Real parts: the window, the SmolLM2 and MiniLM hosts, SQLite."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from app.views import message_layout as ml
from app.views.citation_popup import CitationPopup
from app.views.retrieval_inspector import RetrievalInspector
from app.views.source_viewer import SourceViewer
from engine.paths import EmberPaths
from engine.rag.indexer import find_files, index_collection
from engine.rag.parser import DocumentParser
from engine.rag.tokens import HostTokenCounter
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from tests.e2e.conftest import load_model, rows, set_sampling, type_and_send
from tests.engine.test_rag_parse import write_pdf

pytestmark = pytest.mark.timeout(240)

PAGES = ["The harbour of Lisbon was rebuilt after the earthquake of 1755.",
         "Tram 28 climbs through the Alfama district past the cathedral.",
         "Pastel de nata is a custard tart first baked by monks in Belém."]


def index_trips(home, tmp_path, embedding_host, minilm_gguf) -> int:
    docs = tmp_path / "trips"
    docs.mkdir()
    write_pdf(docs / "lisbon.pdf", PAGES)
    (docs / "bread.md").write_text("# Bread\n\nA sourdough starter needs flour, water and a warm kitchen.\n",
                                   encoding="utf-8")
    conn = connect(EmberPaths(home).db)
    try:
        repo = DocumentsRepository(conn)
        collection = repo.create_collection("Trips", embedding_model_path=str(minilm_gguf))
        repo.add_source(collection.id, str(docs), "folder")  # as the page and ember index record it
        client = embedding_host.client()
        with DocumentParser(log_dir=tmp_path / "logs") as parser:
            for _ in index_collection(repo, collection.id, find_files([docs]), parser.parse, client.embed,
                                      HostTokenCounter(client)):
                pass
        return collection.id
    finally:
        conn.close()


def citation_point(window, row: int, number: int) -> QPoint:
    """Where the link of citation [number] is drawn in the conversation's viewport."""
    view = window.chat_page.view
    delegate = view.message_delegate
    index = window.chat_page.message_model.index(row)
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    item = window.chat_page.message_model.item_at(row)
    layout = delegate.layout_for(item, option)
    geometry = delegate._geometry(item, option)
    for y in range(0, int(layout.height), 3):
        for x in range(0, int(layout.doc.textWidth()), 4):
            if ml.citation_at(layout, QPointF(x, y)) == number:
                return QPoint(int(geometry.doc_origin_x + x), int(geometry.doc_origin_y + y))
    raise AssertionError(f"no link for [{number}] in the reply")


def test_ask_with_a_collection_and_follow_a_citation(qtbot, open_window, ember_home, tmp_path, embedding_host,
                                                     minilm_gguf):
    collection_id = index_trips(ember_home, tmp_path, embedding_host, minilm_gguf)
    window = open_window()
    load_model(qtbot, window, context=2048)
    window.chat.new_session()
    set_sampling(window, max_tokens=24)
    box = window.chat_page.settings.documents
    assert box.list.count() == 1 and "Trips" in box.list.item(0).text()
    box.list.item(0).setCheckState(Qt.CheckState.Checked)  # as a click on its box does
    assert window.chat.chat_documents().collection_ids == (collection_id,)
    assert box.whole.isEnabled()  # two tiny files fit in whole

    type_and_send(qtbot, window, "Which tram climbs through the Alfama district?")
    reply = rows(window)[-1]
    assert reply.role == "assistant" and reply.message.status == "complete"
    assert reply.sources and reply.sources[0].location == "lisbon.pdf, page 2"
    window.chat_page.select_message(len(rows(window)) - 1)
    assert window.chat_page.actions_bar.buttons["sources"].isEnabled()
    window.chat_page.select_message(0)  # the question has no sources
    assert not window.chat_page.actions_bar.buttons["sources"].isEnabled()

    window.chat_page.view.scrollToBottom()
    point = citation_point(window, len(rows(window)) - 1, 1)
    qtbot.mouseClick(window.chat_page.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    popup = window.findChild(CitationPopup, "citationPopup")
    assert popup is not None and popup.isVisible()
    assert "Tram 28" in popup.snippet.toPlainText()

    qtbot.mouseClick(popup.open_button, Qt.MouseButton.LeftButton)  # the page, drawn, with the passage marked
    viewer = window.findChild(SourceViewer)
    assert viewer is not None
    qtbot.waitUntil(lambda: viewer.rendered is not None, timeout=30000)
    assert viewer.rendered.page == 2 and viewer.rendered.highlights
    viewer.close()

    qtbot.mouseClick(popup.inspect_button, Qt.MouseButton.LeftButton)
    inspector = window.findChild(RetrievalInspector, "retrievalInspector")
    assert inspector is not None and inspector.isVisible()
    retrieval = inspector.retrieval
    assert inspector.table.rowCount() == len(retrieval.sources) >= 2
    assert inspector.table.item(0, 1).text() == "[1]" and "lisbon.pdf, page 2" == inspector.table.item(0, 2).text()
    assert "Which tram climbs" in inspector.summary.text()
    inspector.table.selectRow(1)
    assert retrieval.sources[1].text in inspector.text.toPlainText()

    # the next chat keeps the documents, as it keeps the system prompt
    window.chat.new_session()
    assert window.chat.chat_documents().collection_ids == (collection_id,)
