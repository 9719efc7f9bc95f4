"""Documents in a chat turn with the real parts: a collection indexed by the MiniLM host, the SmolLM2
host counting the prompt. Retrieval finds the right page, the budget cuts the lowest-ranked sources
(never the conversation), whole-documents mode gives every chunk in reading order, and what a reply
was given is saved and read back for its citations."""

from __future__ import annotations

import pytest

from engine.chat.turn import TurnRequest
from engine.errors import InvalidInput
from engine.paths import EmberPaths
from engine.rag.embedder import Embedder
from engine.rag.grounding import CUT_BELOW_K, CUT_BUDGET, ChatRetriever, question_of
from engine.rag.indexer import find_files, index_collection
from engine.rag.parser import DocumentParser
from engine.rag.tokens import HostTokenCounter
from engine.runtime.registry import HostRegistry, LoadedModel
from engine.store.chat_documents_repo import ChatDocuments, ChatDocumentsRepository
from engine.store.chats import ChatRepository, Message
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from tests.engine.test_rag_parse import write_pdf

pytestmark = pytest.mark.timeout(120)

PAGES = ["The harbour of Lisbon was rebuilt after the earthquake of 1755.",
         "Tram 28 climbs through the Alfama district past the cathedral.",
         "Pastel de nata is a custard tart first baked by monks in Belém."]
NOTES = [f"Note {i}: the greenhouse number {i} grows tomatoes, basil and peppers in summer." for i in range(12)]


@pytest.fixture
def indexed(ember_home, tmp_path, embedding_host, minilm_gguf):
    """A collection of a 3-page PDF and a Markdown file of twelve short sections, indexed for real."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "lisbon.pdf", PAGES)
    (docs / "garden.md").write_text("\n\n".join(f"# Greenhouse {i}\n\n{text}" for i, text in enumerate(NOTES)),
                                    encoding="utf-8")
    db = EmberPaths(ember_home).db
    conn = connect(db)
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Trips", embedding_model_path=str(minilm_gguf))
    client = embedding_host.client()
    with DocumentParser(log_dir=tmp_path / "logs") as parser:
        events = index_collection(repo, collection.id, find_files([docs]), parser.parse, client.embed,
                                  HostTokenCounter(client))
        for _ in events:
            pass
    registry = HostRegistry()  # the session's MiniLM host, as the app's embedder would have started it
    registry.put(LoadedModel("embedding", embedding_host, str(minilm_gguf)))
    yield db, conn, collection, ChatRetriever(db, Embedder(registry))
    conn.close()


def drain(events):
    try:
        while True:
            next(events)
    except StopIteration as stop:
        return stop.value


def test_retrieval_finds_the_page_and_marks_what_is_below_k(indexed):
    _db, _conn, collection, retriever = indexed
    grounding = drain(retriever.retrieve(ChatDocuments((collection.id,), "retrieve", 3),
                                         "Which tram climbs through Alfama?"))
    best = grounding.sources[0]
    assert best.path.endswith("lisbon.pdf") and best.page_start == 2 and best.number == 1
    assert best.location == "lisbon.pdf, page 2"
    assert [s.number for s in grounding.sources[:3]] == [1, 2, 3]
    below = grounding.sources[3:]
    assert below and all(s.number is None and s.cut_reason == CUT_BELOW_K for s in below)
    assert grounding.documents()[0].startswith("(lisbon.pdf, page 2) Tram 28")


def test_the_budget_cuts_the_lowest_ranked_sources_not_the_chat(indexed, host_client):
    _db, _conn, collection, retriever = indexed
    question = "Which greenhouse grows basil?"
    grounding = drain(retriever.retrieve(ChatDocuments((collection.id,), "retrieve", 10), question))
    roomy = TurnRequest("", [], question, max_tokens=64, context_length=2048)
    turn, kept = retriever.fit(host_client, roomy, grounding)
    assert len(kept.in_prompt) == 10 and turn.budget.documents_tokens > 0 and not turn.budget.overflows
    assert "[10] (" in turn.messages[-1]["content"] and turn.messages[-1]["content"].endswith(question)

    tight = TurnRequest("", [], question, max_tokens=64, context_length=400)
    turn, kept = retriever.fit(host_client, tight, grounding)
    assert not turn.budget.overflows and turn.budget.needed <= 400
    numbers = [s.number for s in kept.in_prompt]
    assert 1 <= len(numbers) < 10 and numbers == list(range(1, len(numbers) + 1))  # the best ones, in order
    cut = [s for s in kept.sources if s.cut_reason == CUT_BUDGET]
    assert cut and min(s.rank for s in cut) == len(numbers) + 1
    assert turn.messages[-1]["content"].endswith(question)  # the question itself is never cut


def test_whole_documents_are_every_chunk_in_reading_order(indexed):
    _db, conn, collection, retriever = indexed
    grounding = drain(retriever.retrieve(ChatDocuments((collection.id,), "whole", 5), "anything"))
    repo = DocumentsRepository(conn)
    expected = [c.id for d in repo.list_documents(collection.id) for c in repo.chunks_of(d.id)]
    assert [s.chunk_id for s in grounding.sources] == expected
    assert [s.number for s in grounding.sources] == list(range(1, len(expected) + 1))


def test_a_reply_keeps_its_sources_after_the_file_is_indexed_again(indexed):
    db, conn, collection, retriever = indexed
    chats = ChatRepository(conn)
    session = chats.create_session()
    user = chats.add_message(session.id, None, "user", "Which tram climbs through Alfama?")
    reply = chats.add_message(session.id, user.id, "assistant", "Tram 28 [1].")
    grounding = drain(retriever.retrieve(ChatDocuments((collection.id,), "retrieve", 2), user.content))
    store = ChatDocumentsRepository(conn)
    store.save_retrieval(reply.id, grounding.query, grounding.mode, grounding.k, grounding.seconds, grounding.sources)
    DocumentsRepository(conn).change_embedding(collection.id, collection.embedding_model_path, "another",
                                               {"chunk_tokens": 128})  # every chunk goes
    assert DocumentsRepository(conn).counts(collection.id).chunks == 0
    saved = store.retrieval(reply.id)
    assert saved.query == user.content and [s.rank for s in saved.sources] == [s.rank for s in grounding.sources]
    cited = store.cited_sources([reply.id])[reply.id]
    assert [s.number for s in cited] == [1, 2] and cited[0].text == grounding.sources[0].text


def test_a_chat_remembers_its_collections_and_mode(indexed):
    _db, conn, collection, _retriever = indexed
    session = ChatRepository(conn).create_session()
    store = ChatDocumentsRepository(conn)
    assert not store.settings(session.id).active
    saved = store.save_settings(session.id, [collection.id], "whole", 7)
    assert saved == ChatDocuments((collection.id,), "whole", 7)
    with pytest.raises(InvalidInput, match="documents mode"):
        store.save_settings(session.id, [collection.id], "everything")
    with pytest.raises(InvalidInput, match="between 1 and"):
        store.save_settings(session.id, [collection.id], "retrieve", 0)
    assert store.settings(session.id) == saved  # a refused change leaves what was there


def test_a_collection_without_its_model_or_its_index_is_said_plainly(indexed, tmp_path):
    _db, conn, collection, retriever = indexed
    repo = DocumentsRepository(conn)
    empty = repo.create_collection("Empty", embedding_model_path=str(tmp_path / "none.gguf"))
    grounding = drain(retriever.retrieve(ChatDocuments((collection.id, empty.id)), "Alfama tram"))
    assert grounding.sources and any("Empty has nothing indexed yet" in note for note in grounding.notes)
    conn.execute("UPDATE collections SET embedding_model_path = ? WHERE id = ?", (str(tmp_path / "gone.gguf"),
                                                                                 collection.id))
    with pytest.raises(InvalidInput, match="embedding model of Trips is missing"):
        drain(retriever.retrieve(ChatDocuments((collection.id,)), "Alfama tram"))


def test_the_question_of_a_regenerated_reply_is_its_prompt():
    prompt = Message(id=1, session_id=1, parent_id=None, role="user", content="Where is Belém?", status="complete",
                     created_at=0)
    assert question_of(TurnRequest("", [prompt], None, 64, 512)) == "Where is Belém?"
    assert question_of(TurnRequest("", [prompt], "And Alfama?", 64, 512)) == "And Alfama?"
