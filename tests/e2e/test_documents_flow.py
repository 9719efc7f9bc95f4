"""Documents as a user meets them: a folder added on the Documents page is indexed, ticked in a chat,
asked about, and the reply's citation opens the PDF page; and an Ember killed (SIGKILL) while it
indexes leaves a whole index, its children go, and the next start goes on from the files already
done without a click. Real parts: the window (in this process, and as `python -m app`), the SmolLM2
and MiniLM hosts, the parser child, SQLite."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.views.citation_popup import CitationPopup
from app.views.source_viewer import SourceViewer
from engine.paths import EmberPaths
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from tests.app.test_documents_page import (
    add_embedding_model,
    make_collection,
    open_documents,
    statuses,
    wait_idle,
)
from tests.e2e.conftest import load_model, rows, set_sampling, type_and_send
from tests.e2e.test_chat_with_documents import PAGES, citation_point
from tests.e2e.test_killed_app import ROOT, app_env
from tests.engine.test_rag_parse import write_pdf
from tests.support.processes import child_pids, pid_alive

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def test_add_a_folder_then_ask_in_chat_and_open_the_cited_page(qtbot, open_window, tmp_path, minilm_gguf):
    docs = tmp_path / "trips"
    docs.mkdir()
    write_pdf(docs / "lisbon.pdf", PAGES)
    (docs / "bread.md").write_text("# Bread\n\nA sourdough starter needs flour, water and a warm kitchen.\n",
                                   encoding="utf-8")
    window = open_window()
    page = open_documents(qtbot, window)
    add_embedding_model(qtbot, window, minilm_gguf)
    collection_id = make_collection(qtbot, page, "Trips", minilm_gguf)
    page.add_paths([str(docs)])
    qtbot.waitUntil(lambda: statuses(page) == {"bread.md": "indexed", "lisbon.pdf": "indexed"}, timeout=60000)
    wait_idle(qtbot, page)

    window.nav.setCurrentRow(0)
    load_model(qtbot, window, context=2048)
    window.chat.new_session()
    set_sampling(window, max_tokens=24)
    box = window.chat_page.settings.documents
    assert box.list.count() == 1 and "Trips" in box.list.item(0).text()  # the page's collection, in the chat
    box.list.item(0).setCheckState(Qt.CheckState.Checked)
    assert window.chat.chat_documents().collection_ids == (collection_id,)
    type_and_send(qtbot, window, "Which tram climbs through the Alfama district?")
    reply = rows(window)[-1]
    assert reply.message.status == "complete" and reply.sources[0].location == "lisbon.pdf, page 2"

    window.chat_page.view.scrollToBottom()
    qtbot.mouseClick(window.chat_page.view.viewport(), Qt.MouseButton.LeftButton,
                     pos=citation_point(window, len(rows(window)) - 1, 1))
    popup = window.findChild(CitationPopup, "citationPopup")
    qtbot.mouseClick(popup.open_button, Qt.MouseButton.LeftButton)
    viewer = window.findChild(SourceViewer)
    qtbot.waitUntil(lambda: viewer.rendered is not None, timeout=30000)
    assert viewer.rendered.page == 2 and viewer.rendered.highlights
    viewer.close()


def indexed_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM documents WHERE status = 'indexed'").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="watches the children through /proc")
def test_ember_killed_while_indexing_goes_on_at_the_next_start(qtbot, open_window, ember_home, tmp_path, minilm_gguf):
    notes = tmp_path / "notes"
    notes.mkdir()
    files = 10
    for n in range(files):
        (notes / f"note{n:02d}.txt").write_text(
            "\n\n".join(f"Note {n}, paragraph {p}: the ferry to island {n} leaves at {p} o'clock." for p in range(80)),
            encoding="utf-8")
    paths = EmberPaths(ember_home).ensure()
    conn = connect(paths.db)
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Notes", embedding_model_path=str(minilm_gguf))
    repo.add_source(collection.id, str(notes), "folder")
    conn.close()

    app = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=app_env(ember_home),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while indexed_count(paths.db) < 2 and time.monotonic() < deadline and app.poll() is None:
            time.sleep(0.1)  # the window opened, its watch found the new folder and started indexing by itself
        done = indexed_count(paths.db)
        assert 2 <= done < files, app.stderr.read()[-2000:] if app.poll() is not None else done
        children = child_pids(app.pid)
        assert len(children) >= 2  # the embedding host and the document reader
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        app.stderr.close()
    deadline = time.monotonic() + 15
    while any(pid_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in children), "a child outlived the killed app"

    conn = connect(paths.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert DocumentsRepository(conn).integrity_report().ok
        done = sum(d.status == "indexed" for d in DocumentsRepository(conn).list_documents(collection.id))
    finally:
        conn.close()

    window = open_window()
    page = open_documents(qtbot, window)
    reports = []
    page.controller.index_finished.connect(lambda cid, report: reports.append(report))
    qtbot.waitUntil(lambda: bool(reports), timeout=120000)  # nobody clicks: the watch goes on
    assert reports[0].unchanged == done and reports[0].indexed == files - done
    page.controller.refresh_detail()
    assert set(statuses(page).values()) == {"indexed"}
