"""The retrieval bench with real parts: SQLite, the MiniLM embedding host for scoring, the SmolLM2 host for
writing. Scoring is checked where the answer is known (a question that repeats its chunk's distinctive
words is BM25's first hit; a pair whose passage is gone is a miss; a chunk indexed again is still
found by its lines, and an id SQLite gave to another chunk is not mistaken for it); writing stores
what the model wrote with the chunk it came from, and Stop ends it between and inside replies."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.jobs import CancelToken, GenerationStats, TokenEvent
from engine.rag.bench import (
    KS,
    MIN_CHUNK_WORDS,
    BenchReport,
    ModeScore,
    _winner,
    pairs_to_score,
    sample_chunks,
    score,
    write_pairs,
)
from engine.rag.chunker import Chunk
from engine.runtime.sampling import Sampling
from engine.store.db import connect
from engine.store.documents_repo import DocumentsRepository
from engine.store.qa_repo import NewPair, QARepository
from tests.engine.test_rag_index import PARAGRAPHS

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def conn(ember_home):
    conn = connect(ember_home / "ember.db")
    yield conn
    conn.close()


def drain(events):
    progress = []
    try:
        while True:
            progress.append(next(events))
    except StopIteration as stop:
        return stop.value, progress


def add_text(repo, collection_id, path, texts, embed=None, first_line=1):
    """One document of these chunks, each on its own lines (chunk i: lines first+3i..first+3i+2), embedded
    by `embed` (the MiniLM host) or with arbitrary unit vectors when the test does not search."""
    chunks = [Chunk(text, (), len(text.split()), line_start=first_line + 3 * i, line_end=first_line + 3 * i + 2)
              for i, text in enumerate(texts)]
    if embed is not None:
        vectors = embed(texts)
    else:
        vectors = np.random.default_rng(len(path)).standard_normal((len(texts), 8)).astype(np.float32)
    document = repo.upsert_document(collection_id, path, sha256=path, size=1, mtime=1.0, kind="text")
    repo.replace_document_chunks(document.id, chunks, vectors)
    return repo.chunks_of(document.id)


def topics(conn, embedding_client, minilm_gguf, names=None):
    """A collection of the topic paragraphs, one file each, embedded by the real MiniLM host."""
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Topics", embedding_model_path=str(minilm_gguf))
    chunks = {name: add_text(repo, collection.id, f"/topics/{name}.txt", [PARAGRAPHS[name]], embedding_client.embed)[0]
              for name in names or PARAGRAPHS}
    return collection, chunks


def pair_for(chunk, path, question, answer="") -> NewPair:
    return NewPair(question, answer, chunk.id, path, chunk.text, chunk.page_start, chunk.page_end, chunk.line_start,
                   chunk.line_end)


# --- scoring ------------------------------------------------------------------------------------------

def test_score_where_the_answer_is_known(conn, embedding_client, minilm_gguf):
    collection, chunks = topics(conn, embedding_client, minilm_gguf)
    qa = QARepository(conn)
    distinctive = {"sourdough": "sourdough starter flour water", "chess": "castling king rook squares",
                   "espresso": "espresso crema bars pressure"}
    kept = qa.add_pairs(collection.id, [pair_for(chunks[n], f"/topics/{n}.txt", q) for n, q in distinctive.items()]
                        + [pair_for(chunks["volcano"], "/topics/volcano.txt", "Where does lava come from?")])
    draft, dropped = qa.add_pairs(collection.id, [
        pair_for(chunks["cats"], "/topics/cats.txt", "How many hours a day do cats sleep?"),
        pair_for(chunks["taxes"], "/topics/taxes.txt", "Which receipts do I keep for deductions?")])
    qa.set_status([p.id for p in kept], "kept")
    qa.set_status([dropped.id], "dropped")
    repo = DocumentsRepository(conn)
    repo.remove_document(repo.find_document(collection.id, "/topics/volcano.txt").id)  # its passage is gone

    report, progress = drain(score(conn, collection.id, embedding_client.embed))
    assert [p.pair_id for p in report.pairs] == [p.id for p in kept]  # the draft and the dropped one are not counted
    ranks = {p.question: p.ranks for p in report.pairs}
    for question in distinctive.values():
        assert ranks[question]["bm25"] == 1
    gone = report.pairs[-1]
    assert gone.missing and gone.ranks == {"hybrid": None, "bm25": None, "vector": None}
    bm25 = report.score_of("bm25")
    assert bm25.recall == {k: 0.75 for k in KS} and bm25.mrr == pytest.approx(0.75)
    assert all(s.recall[10] <= 0.75 for s in report.scores)  # a miss counts in every mode
    assert report.missing == 1 and "4 questions" in report.summary() and "no longer indexed" in report.summary()
    assert report.winner in ("hybrid", "bm25", "vector") and progress[-1].done == progress[-1].total == 4
    data = report.to_dict()
    assert set(data["modes"]) == {"hybrid", "bm25", "vector"} and data["modes"]["bm25"]["recall@5"] == 0.75
    assert data["winner"] == report.winner and len(data["pairs"]) == 4

    with_drafts, _ = drain(score(conn, collection.id, embedding_client.embed, include_drafts=True))
    assert draft.id in {p.pair_id for p in with_drafts.pairs} and with_drafts.included_drafts
    assert dropped.id not in {p.pair_id for p in with_drafts.pairs}


def test_a_chunk_indexed_again_is_found_by_its_lines_and_a_reused_id_is_not_mistaken(conn, embedding_client,
                                                                                     minilm_gguf):
    collection, chunks = topics(conn, embedding_client, minilm_gguf, ["chess", "sourdough", "volcano"])
    repo, qa = DocumentsRepository(conn), QARepository(conn)
    chess, volcano = qa.add_pairs(collection.id, [
        pair_for(chunks["chess"], "/topics/chess.txt", "castling king rook squares"),
        pair_for(chunks["volcano"], "/topics/volcano.txt", "molten rock lava vent crust")])
    qa.set_status([chess.id, volcano.id], "kept")
    # the volcano file leaves the index; another file's chunk (the same words) gets the id SQLite frees
    repo.remove_document(repo.find_document(collection.id, "/topics/volcano.txt").id)
    [other] = add_text(repo, collection.id, "/elsewhere/volcano-copy.txt", [PARAGRAPHS["volcano"]],
                       embedding_client.embed)
    assert other.id == volcano.chunk_id  # the precondition: the old id now names another chunk
    # the chess file is indexed again: its chunk gets a new id at the same lines
    [new_chess] = add_text(repo, collection.id, "/topics/chess.txt", [PARAGRAPHS["chess"]], embedding_client.embed)
    assert new_chess.id != chess.chunk_id

    report, _ = drain(score(conn, collection.id, embedding_client.embed))
    by_id = {p.pair_id: p for p in report.pairs}
    assert by_id[chess.id].ranks["bm25"] == 1 and not by_id[chess.id].missing
    assert by_id[volcano.id].missing and by_id[volcano.id].ranks["bm25"] is None


def test_nothing_to_score_says_what_to_do(conn, embedding_client, minilm_gguf):
    collection, chunks = topics(conn, embedding_client, minilm_gguf, ["chess"])
    qa = QARepository(conn)
    with pytest.raises(InvalidInput, match="no questions") as empty:
        drain(score(conn, collection.id, embedding_client.embed))
    assert "Write questions" in empty.value.hint
    [pair] = qa.add_pairs(collection.id, [pair_for(chunks["chess"], "/topics/chess.txt", "When may a king castle?")])
    with pytest.raises(InvalidInput, match="kept") as drafts:
        pairs_to_score(conn, collection.id)
    assert "drafts" in drafts.value.hint
    assert [p.id for p in pairs_to_score(conn, collection.id, include_drafts=True)] == [pair.id]
    qa.set_status([pair.id], "dropped")
    with pytest.raises(InvalidInput, match="dropped"):
        pairs_to_score(conn, collection.id, include_drafts=True)

    repo = DocumentsRepository(conn)
    bare = repo.create_collection("Bare")
    QARepository(conn).add_pairs(bare.id, [NewPair("When may a king castle?", "", None, "/x.txt", "text")])
    QARepository(conn).set_status([p.id for p in qa.list_pairs(bare.id)], "kept")
    with pytest.raises(InvalidInput, match="nothing indexed"):
        pairs_to_score(conn, bare.id)


def test_the_winner_is_the_best_recall_at_5_then_mrr():
    def scores(*figures):
        return [ModeScore(mode, {k: r5 for k in KS}, mrr) for mode, (r5, mrr) in zip(("hybrid", "bm25", "vector"),
                                                                                   figures, strict=True)]

    assert _winner(scores((0.5, 0.9), (0.75, 0.1), (0.6, 0.6))) == ("bm25", ())
    assert _winner(scores((0.75, 0.5), (0.75, 0.6), (0.6, 0.9))) == ("bm25", ())  # MRR breaks the tie
    assert _winner(scores((0.75, 0.5), (0.5, 0.6), (0.75, 0.5))) == ("hybrid", ("vector",))
    report = BenchReport("Notes", tuple(scores((0.75, 0.5), (0.5, 0.6), (0.75, 0.5))), (), "hybrid", ("vector",))
    assert report.summary().startswith("Hybrid and Vectors tie on 0 questions")


# --- sampling and writing ---------------------------------------------------------------------------

LONG = "The harbour of Lisbon was rebuilt after the great earthquake of 1755 by the Marquis of Pombal's engineers."


def test_chunks_are_sampled_in_turn_from_every_document_skipping_short_and_asked_ones(conn):
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Mixed")
    a = add_text(repo, collection.id, "/a.md", [f"{LONG} Part {i}." for i in range(6)])
    add_text(repo, collection.id, "/b.md", [f"{LONG} Only part."])
    add_text(repo, collection.id, "/c.md", ["Too short to ask about."])
    order = sample_chunks(repo, collection.id, seed=1)
    assert len(order) == 7 and all(len(c.text.split()) >= MIN_CHUNK_WORDS for _, c in order)
    assert {order[0][0].path, order[1][0].path} == {"/a.md", "/b.md"}  # one of each document first
    assert [c.id for _, c in sample_chunks(repo, collection.id, seed=1)] == [c.id for _, c in order]  # seeded
    assert {tuple(c.id for _, c in sample_chunks(repo, collection.id, seed=s)) for s in range(5)} != {
        tuple(c.id for _, c in order)}
    skipped = sample_chunks(repo, collection.id, seed=1, skip={("/a.md", a[0].text), ("/b.md", f"{LONG} Only part.")})
    assert {c.id for _, c in skipped} == {c.id for c in a[1:]}


class ScriptedChat:
    """Stands in for a chat model whose replies a test must choose (junk, a process error): each
    stream_chat answers the next scripted reply. The real model is used in the tests below."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.asked = []

    def stream_chat(self, messages, sampling, cancel):
        self.asked.append(messages)
        reply = self.replies.pop(0)
        if isinstance(reply, GenerationStats):
            yield TokenEvent(stats=reply)
            return
        yield TokenEvent(text=reply)
        yield TokenEvent(stats=GenerationStats("stop"))


def test_unreadable_replies_and_errors_are_skipped_and_the_tries_are_bounded(conn):
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Mixed")
    chunks = add_text(repo, collection.id, "/a.md", [f"{LONG} Part {i}." for i in range(6)])
    chat = ScriptedChat(["I cannot write questions.",
                         GenerationStats("error", error="The prompt has 3000 tokens but the context holds 2048."),
                         "Q: Who rebuilt the harbour of Lisbon?\nA: Pombal's engineers.",
                         "Q: Who rebuilt the harbour of Lisbon?\nA: The same question again.",
                         "Q: " + LONG + "\nA: copied"])
    report, progress = drain(write_pairs(conn, collection.id, chat, 2, seed=3))
    assert len(chat.asked) == 4 == report.chunks_asked  # two tries per pair wanted, then it gives up
    assert [p.question for p in report.pairs] == ["Who rebuilt the harbour of Lisbon?"]
    assert report.unreadable == 3 and len(report.errors) == 1 and "context holds" in report.errors[0]
    assert not report.stopped and progress[-1].done == 1 and progress[-1].total == 2
    assert report.pairs[0].chunk_id in {c.id for c in chunks}
    with pytest.raises(InvalidInput, match="1 to 200"):
        drain(write_pairs(conn, collection.id, chat, 0))
    empty = repo.create_collection("Empty")
    with pytest.raises(InvalidInput, match="nothing indexed"):
        drain(write_pairs(conn, empty.id, chat, 1))
    QARepository(conn).add_pairs(collection.id, [NewPair("Which part is this about?", "", c.id, "/a.md", c.text)
                                                 for c in chunks])
    with pytest.raises(InvalidInput, match="no passage left") as all_asked:
        drain(write_pairs(conn, collection.id, chat, 1))
    assert "review" in all_asked.value.hint


@pytest.mark.slow
def test_smollm2_writes_pairs_stored_with_their_chunk(conn, host_client):
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Topics")
    chunks = {}
    for name in ("sourdough", "marathon", "chess", "espresso"):
        [chunks[f"/topics/{name}.txt"]] = add_text(repo, collection.id, f"/topics/{name}.txt", [PARAGRAPHS[name]])
    report, progress = drain(write_pairs(conn, collection.id, host_client, 2, seed=0))
    assert 1 <= len(report.pairs) <= 2 and not report.stopped
    stored = QARepository(conn).list_pairs(collection.id)
    assert [p.id for p in stored] == [p.id for p in report.pairs]
    for pair in stored:
        chunk = chunks[pair.path]
        assert pair.status == "draft" and pair.question.strip()
        assert (pair.chunk_id, pair.chunk_text, pair.line_start, pair.line_end) == (
            chunk.id, chunk.text, chunk.line_start, chunk.line_end)
    assert any("Writing a question about" in p.message and ".txt, lines 1–3" in p.message for p in progress)
    assert report.chunks_asked >= len(report.pairs) and report.seconds > 0

    # a second run asks about other passages
    again, _ = drain(write_pairs(conn, collection.id, host_client, 1, seed=0))
    assert not {p.chunk_id for p in again.pairs} & {p.chunk_id for p in report.pairs}


class CancelOnFirstText:
    """The real client; the Stop button is pressed (from another thread) as the first text arrives."""

    def __init__(self, client, cancel: CancelToken):
        self.client, self.cancel, self.calls = client, cancel, 0

    def stream_chat(self, messages, sampling, cancel):
        self.calls += 1
        for event in self.client.stream_chat(messages, sampling, cancel):
            if event.stats is None and not self.cancel.cancelled:
                pressed = threading.Thread(target=self.cancel.cancel)
                pressed.start()
                pressed.join()
            yield event


def test_stop_ends_writing_inside_a_reply_and_between_replies(conn, host_client):
    repo = DocumentsRepository(conn)
    collection = repo.create_collection("Topics")
    for name in ("sourdough", "marathon"):
        add_text(repo, collection.id, f"/topics/{name}.txt", [PARAGRAPHS[name]])
    cancel = CancelToken()
    chat = CancelOnFirstText(host_client, cancel)
    report, _ = drain(write_pairs(conn, collection.id, chat, 2, cancel=cancel))
    assert report.stopped and report.pairs == () and chat.calls == 1  # nothing after the stop
    assert QARepository(conn).list_pairs(collection.id) == []

    stopped_before = CancelToken()
    stopped_before.cancel()
    chat = CancelOnFirstText(host_client, stopped_before)
    report, _ = drain(write_pairs(conn, collection.id, chat, 2, cancel=stopped_before))
    assert report.stopped and chat.calls == 0

    # the model process is fine after the stop: the next request is answered
    events = list(host_client.stream_chat([{"role": "user", "content": "Say hi."}], Sampling(max_tokens=4, seed=1)))
    assert events[-1].stats.stop_reason in ("stop", "length")
