"""Indexing a folder end to end with the real parts: the parser child, the MiniLM embedding host,
SQLite. Incremental (nothing unchanged is read again), a changed file redone, a deleted one gone, a
bad file failed with its reason while the rest is indexed, a stop kept what was finished, and the
right chunk found with its page."""

from __future__ import annotations

import pytest

from engine.jobs import CancelToken
from engine.paths import EmberPaths
from engine.rag.indexer import find_files, index_collection
from engine.rag.parser import DocumentParser
from engine.rag.retrieve import search
from engine.rag.tokens import HostTokenCounter
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from tests.engine.test_rag_parse import write_pdf

pytestmark = pytest.mark.timeout(120)

PAGES = ["The harbour of Lisbon was rebuilt after the earthquake of 1755.",
         "Tram 28 climbs through the Alfama district past the cathedral.",
         "Pastel de nata is a custard tart first baked by monks in Belém."]


@pytest.fixture
def parser(tmp_path):
    with DocumentParser(log_dir=tmp_path / "logs") as reader:
        yield reader


@pytest.fixture
def repo(ember_home):
    conn = connect(EmberPaths(ember_home).db)
    yield DocumentsRepository(conn)
    conn.close()


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "notes"
    docs.mkdir()
    write_pdf(docs / "lisbon.pdf", PAGES)
    (docs / "bread.md").write_text("# Bread\n\nA sourdough starter needs flour, water and a warm kitchen.\n",
                                   encoding="utf-8")
    (docs / "trains.txt").write_text("The night train from Vienna reaches Venice at dawn.\n", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / ".hidden.txt").write_text("never indexed", encoding="utf-8")
    return docs


def run(repo, collection_id, files, parser, client, cancel=None):
    counting = []

    def parse(path, cancel):
        counting.append(path.name)
        return parser.parse(path, cancel)

    events = index_collection(repo, collection_id, files, parse, client.embed, HostTokenCounter(client), cancel)
    progress = []
    try:
        while True:
            progress.append(next(events))
    except StopIteration as stop:
        return stop.value, counting, progress


def test_index_a_folder_then_only_what_changed(repo, folder, parser, embedding_client):
    collection = repo.create_collection("Notes", embedding_model_path="minilm.gguf")
    files = find_files([folder])
    assert sorted(p.name for p in files) == ["bread.md", "broken.pdf", "lisbon.pdf", "trains.txt"]
    report, parsed, progress = run(repo, collection.id, files, parser, embedding_client)
    assert report.indexed == 3 and set(report.failed) == {str(folder / "broken.pdf")}
    assert "damaged" in report.failed[str(folder / "broken.pdf")] or "PDF" in report.failed[str(folder / "broken.pdf")]
    assert progress[-1].done == progress[-1].total == 4
    assert repo.integrity_report().ok

    query = "Which tram goes through Alfama?"
    hits = search(repo.conn, [collection.id], query, embedding_client.embed([query])[0], k=3)
    assert hits[0].path == str(folder / "lisbon.pdf") and hits[0].page_start == 2

    # nothing changed: nothing is parsed or embedded again, the broken file included (its reason is kept)
    report, parsed, _ = run(repo, collection.id, find_files([folder]), parser, embedding_client)
    assert report.unchanged == 3 and parsed == [] and report.chunks == 0
    assert set(report.failed) == {str(folder / "broken.pdf")}
    assert repo.find_document(collection.id, str(folder / "broken.pdf")).status == "failed"

    # one file changed, one deleted: only the changed one is redone; the deleted one leaves the index
    (folder / "bread.md").write_text("# Bread\n\nRye bread keeps for a week in a cloth bag.\n", encoding="utf-8")
    (folder / "trains.txt").unlink()
    report, parsed, _ = run(repo, collection.id, find_files([folder]), parser, embedding_client)
    assert sorted(parsed) == ["bread.md"] and report.removed == [str(folder / "trains.txt")]
    assert repo.find_document(collection.id, str(folder / "trains.txt")) is None
    texts = " ".join(c.text for d in repo.list_documents(collection.id) for c in repo.chunks_of(d.id))
    assert "Rye bread" in texts and "sourdough" not in texts and "Vienna" not in texts
    assert repo.integrity_report().ok

    # asked to, it reads the failed file again
    events = index_collection(repo, collection.id, find_files([folder]), parser.parse, embedding_client.embed,
                              HostTokenCounter(embedding_client), retry_failed=True)
    report = drain(events)
    assert report.parsed == 1 and set(report.failed) == {str(folder / "broken.pdf")}


def drain(events):
    try:
        while True:
            next(events)
    except StopIteration as stop:
        return stop.value


def test_a_stopped_run_keeps_the_finished_files_and_the_next_run_goes_on(repo, folder, parser, embedding_client):
    collection = repo.create_collection("Notes", embedding_model_path="minilm.gguf")
    files = find_files([folder])
    cancel = CancelToken()
    events = index_collection(repo, collection.id, files, parser.parse, embedding_client.embed,
                              HostTokenCounter(embedding_client), cancel)
    while next(events).done < 1:  # the plan, then the first file's progress until it is done
        pass
    cancel.cancel()
    for _ in events:
        pass
    done_first = {d.path for d in repo.list_documents(collection.id) if d.status == "indexed"}
    assert len(done_first) == 1 and repo.integrity_report().ok
    report, parsed, _ = run(repo, collection.id, files, parser, embedding_client)
    assert report.unchanged == 1 and str(folder / parsed[0]) not in done_first
    assert report.indexed == 2
