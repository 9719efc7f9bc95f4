"""A collection indexed from its sources as the Documents page does it (index_sources), and what the
folder watcher sees (pending_work): new, changed and deleted files; a touched file is not read again; a
folder that is not there keeps its documents; an unreadable file does not look changed forever.
Real parts: the parser child, the MiniLM embedding host, SQLite."""

from __future__ import annotations

import os

import pytest

from engine.errors import InvalidInput
from engine.paths import EmberPaths
from engine.rag.embedder import Embedder
from engine.rag.index_job import index_sources
from engine.rag.parser import DocumentParser
from engine.rag.watch import pending_work
from engine.runtime.registry import HostRegistry, LoadedModel
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def home_db(ember_home):
    return EmberPaths(ember_home).ensure().db


@pytest.fixture
def repo(home_db):
    conn = connect(home_db)
    yield DocumentsRepository(conn)
    conn.close()


@pytest.fixture
def embedder(embedding_host, minilm_gguf):
    """An Embedder whose registry already holds the session's MiniLM host (never stopped here)."""
    registry = HostRegistry()
    registry.put(LoadedModel("embedding", embedding_host, str(minilm_gguf)))
    return Embedder(registry)


@pytest.fixture
def parser(tmp_path):
    with DocumentParser(log_dir=tmp_path / "logs") as reader:
        yield reader


class CountingParser:
    """The real parser, counting the files it is asked to read."""

    def __init__(self, parser: DocumentParser) -> None:
        self.parser, self.parsed = parser, []

    def parse(self, path, cancel=None):
        self.parsed.append(path.name)
        return self.parser.parse(path, cancel)


def run(home_db, collection_id, embedder, parser):
    events = index_sources(home_db, collection_id, embedder, parser)
    progress = []
    try:
        while True:
            progress.append(next(events))
    except StopIteration as stop:
        return stop.value, progress


def test_the_watcher_sees_new_changed_and_deleted_files_and_a_run_takes_them_in(
        home_db, repo, embedder, parser, tmp_path, minilm_gguf):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "bread.md").write_text("# Bread\n\nA sourdough starter needs flour and water.\n", encoding="utf-8")
    (folder / "trains.txt").write_text("The night train from Vienna reaches Venice at dawn.\n", encoding="utf-8")
    collection = repo.create_collection("Notes", embedding_model_path=str(minilm_gguf))
    repo.add_source(collection.id, str(folder), "folder")

    work = pending_work(repo, collection.id)
    assert sorted(os.path.basename(p) for p in work.new) == ["bread.md", "trains.txt"] and not work.changed
    report, progress = run(home_db, collection.id, embedder, parser)
    assert report.indexed == 2 and not pending_work(repo, collection.id)
    last = progress[-1]
    assert last.done == last.total == 2 and last.chunks == report.chunks > 0 and last.file

    # touched but not changed: not seen as work by the index, not read again
    st = (folder / "bread.md").stat()
    os.utime(folder / "bread.md", (st.st_atime, st.st_mtime + 5))
    assert pending_work(repo, collection.id).changed == [str(folder / "bread.md")]
    counting = CountingParser(parser)
    report, _ = run(home_db, collection.id, embedder, counting)
    assert counting.parsed == [] and report.unchanged == 2
    assert not pending_work(repo, collection.id)  # its new time was recorded

    (folder / "bread.md").write_text("# Bread\n\nRye bread keeps for a week.\n", encoding="utf-8")
    (folder / "trains.txt").unlink()
    (folder / "tea.txt").write_text("Green tea is steeped at 80 degrees.\n", encoding="utf-8")
    work = pending_work(repo, collection.id)
    assert [os.path.basename(p) for p in work.new] == ["tea.txt"]
    assert work.changed == [str(folder / "bread.md")] and work.deleted == [str(folder / "trains.txt")]
    assert work.summary == "1 new, 1 changed, 1 deleted files"
    report, _ = run(home_db, collection.id, embedder, counting)
    assert sorted(counting.parsed) == ["bread.md", "tea.txt"] and report.removed == [str(folder / "trains.txt")]
    assert not pending_work(repo, collection.id) and repo.integrity_report().ok


def test_a_folder_that_is_not_there_keeps_its_documents(home_db, repo, embedder, parser, tmp_path, minilm_gguf):
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "atlas.txt").write_text("Lisbon lies on the Tagus.\n", encoding="utf-8")
    collection = repo.create_collection("Atlas", embedding_model_path=str(minilm_gguf))
    repo.add_source(collection.id, str(drive), "folder")
    run(home_db, collection.id, embedder, parser)
    drive.rename(tmp_path / "unplugged")
    work = pending_work(repo, collection.id)
    assert work.missing_sources == [str(drive)] and not work
    report, _ = run(home_db, collection.id, embedder, parser)
    assert report.removed == [] and repo.counts(collection.id).chunks > 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_fails_once_and_is_not_seen_as_changed_again(home_db, repo, embedder, parser, tmp_path,
                                                                        minilm_gguf):
    folder = tmp_path / "locked"
    folder.mkdir()
    secret = folder / "secret.txt"
    secret.write_text("nobody may read this\n", encoding="utf-8")
    secret.chmod(0)
    collection = repo.create_collection("Locked", embedding_model_path=str(minilm_gguf))
    repo.add_source(collection.id, str(folder), "folder")
    report, _ = run(home_db, collection.id, embedder, parser)
    assert str(secret) in report.failed
    assert not pending_work(repo, collection.id)


def test_a_collection_whose_embedding_model_is_gone_is_refused_with_what_to_do(home_db, repo, embedder, parser,
                                                                               tmp_path):
    collection = repo.create_collection("Orphan", embedding_model_path=str(tmp_path / "gone.gguf"))
    with pytest.raises(InvalidInput) as caught:
        run(home_db, collection.id, embedder, parser)
    assert "missing" in caught.value.message and "settings" in caught.value.hint


def test_a_model_that_wants_a_passage_prefix_gets_it(home_db, repo, parser, tmp_path, minilm_gguf, embedding_host,
                                                     embedding_client):
    """A file named as an E5 model (here MiniLM's weights under that name) has "passage: " put before
    every chunk it embeds: the stored vector is that of the prefixed text, not of the bare one."""
    import numpy as np

    e5 = tmp_path / "multilingual-e5-small.Q8_0.gguf"
    e5.write_bytes(minilm_gguf.read_bytes())
    registry = HostRegistry()
    registry.put(LoadedModel("embedding", embedding_host, str(e5)))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Porto is famous for its wine.\n", encoding="utf-8")
    collection = repo.create_collection("E5", embedding_model_path=str(e5))
    repo.add_source(collection.id, str(tmp_path / "docs"), "folder")
    run(home_db, collection.id, Embedder(registry), parser)
    chunk = repo.chunks_of(repo.list_documents(collection.id)[0].id)[0]
    _, stored = repo.vectors(collection.id)
    prefixed, bare = embedding_client.embed(["passage: " + chunk.text, chunk.text])
    assert float(np.dot(stored[0], prefixed)) > 0.9999 > float(np.dot(stored[0], bare))
