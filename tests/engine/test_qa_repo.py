"""The retrieval bench's pairs in SQLite: added as drafts with a copy of their chunk, listed by status,
edited, kept or dropped, deleted; bad input refused with nothing changed; gone with their collection."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput, NotFound
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from engine.store.qa_repo import NewPair, QARepository, location


@pytest.fixture
def conn(ember_home):
    conn = connect(ember_home / "ember.db")
    yield conn
    conn.close()


def new(question: str, answer: str = "Daily.", **where) -> NewPair:
    return NewPair(question, answer, chunk_id=7, path="/notes/bread.md", chunk_text="Feed the starter daily.", **where)


def test_pairs_are_drafts_with_their_chunk_then_reviewed(conn):
    collection = DocumentsRepository(conn).create_collection("Notes")
    qa = QARepository(conn)
    first, second, third = qa.add_pairs(collection.id, [new("  How often is the starter fed? ", line_start=3,
                                                            line_end=9),
                                                        new("What does the starter need?", page_start=2, page_end=2),
                                                        new("Where is it kept?")])
    assert first.status == "draft" and first.question == "How often is the starter fed?"
    assert (first.chunk_id, first.path, first.chunk_text) == (7, "/notes/bread.md", "Feed the starter daily.")
    assert first.location == "bread.md, lines 3–9" and second.location == "bread.md, page 2"
    assert third.location == "bread.md"
    assert qa.counts(collection.id) == {"draft": 3, "kept": 0, "dropped": 0}

    qa.set_status([first.id, second.id], "kept")
    qa.set_status([third.id], "dropped")
    assert [p.id for p in qa.list_pairs(collection.id, ("kept",))] == [first.id, second.id]
    assert [p.id for p in qa.list_pairs(collection.id, ("kept", "draft"))] == [first.id, second.id]
    assert qa.counts(collection.id) == {"draft": 0, "kept": 2, "dropped": 1}

    edited = qa.edit(first.id, question="How often do you feed a sourdough starter?")
    assert edited.question == "How often do you feed a sourdough starter?" and edited.answer == "Daily."
    assert edited.status == "kept" and edited.updated_at >= first.updated_at
    assert qa.edit(first.id, answer=" Every day ").answer == "Every day"

    assert qa.asked_chunks(collection.id) == {("/notes/bread.md", "Feed the starter daily.")}
    assert "how often do you feed a sourdough starter?" in qa.questions(collection.id)
    qa.delete([second.id])
    assert [p.id for p in qa.list_pairs(collection.id)] == [first.id, third.id]


def test_bad_input_is_refused_and_nothing_changes(conn):
    collection = DocumentsRepository(conn).create_collection("Notes")
    qa = QARepository(conn)
    with pytest.raises(InvalidInput, match="empty"):
        qa.add_pairs(collection.id, [new("A fine question?"), new("   ")])
    assert qa.list_pairs(collection.id) == []  # all or none
    pair = qa.add_pairs(collection.id, [new("A fine question?")])[0]
    with pytest.raises(InvalidInput) as refused:
        qa.edit(pair.id, question="")
    assert refused.value.hint
    with pytest.raises(InvalidInput, match="characters"):
        qa.edit(pair.id, question="why " * 400)
    with pytest.raises(InvalidInput, match="status"):
        qa.set_status([pair.id], "maybe")
    with pytest.raises(InvalidInput):
        qa.list_pairs(collection.id, ("all",))
    assert qa.get(pair.id) == pair
    with pytest.raises(NotFound):
        qa.add_pairs(collection.id + 99, [new("A fine question?")])
    with pytest.raises(NotFound):
        qa.get(pair.id + 99)


def test_pairs_go_with_their_collection(conn):
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Notes")
    QARepository(conn).add_pairs(collection.id, [new("How often is it fed?")])
    repo.delete_collection(collection.id)
    assert conn.execute("SELECT count(*) FROM qa_pairs").fetchone()[0] == 0


def test_location_reads_as_people_write_it():
    assert location("/a/guide.pdf", 2, 3, None, None) == "guide.pdf, pages 2–3"
    assert location("/a/notes.md", None, None, 4, 4) == "notes.md, line 4"
    assert location("/a/notes.md", None, None, 4, None) == "notes.md, line 4"
