"""Documents' chunks, index and retrieval: the chunker's rules, the repository's one-unit replace and
removal, and hybrid search over real texts embedded by a real all-MiniLM-L6-v2 host."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from engine.errors import Cancelled, DatabaseError, InvalidInput
from engine.jobs import CancelToken
from engine.rag.chunker import Chunk, chunk_sections
from engine.rag.retrieve import RRF_K, fts_query, fuse, query_terms, search
from engine.rag.tokens import HostTokenCounter
from engine.rag.vectors import VectorStore
from engine.store.db import Transaction, connect
from engine.store.documents_repo import DocumentsRepository

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Section:
    """Stands in for engine.rag.document.Section (the parser's): the attributes the chunker reads."""

    text: str
    page: int | None = None
    lines: tuple[int, int] | None = None
    heading_path: tuple[str, ...] = ()


def count_words(texts):
    """A tokenizer of one token per word: makes the chunker's arithmetic easy to check by eye."""
    return [len(text.split()) for text in texts]


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


@pytest.fixture
def conn(ember_home):
    conn = connect(ember_home / "ember.db")
    yield conn
    conn.close()


@pytest.fixture
def repo(conn):
    return DocumentsRepository(conn)


@pytest.fixture
def counter(embedding_client):
    return HostTokenCounter(embedding_client)


# --- chunking -----------------------------------------------------------------------------------------

def test_whole_paragraphs_are_packed_up_to_the_budget():
    paragraphs = [words(10, f"p{n}w") + "." for n in range(7)]
    chunks = chunk_sections([Section("\n\n".join(paragraphs))], count_words, chunk_tokens=25, overlap_tokens=0)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[i:i + 2]) for i in range(0, 7, 2)]
    assert [c.token_count for c in chunks] == [20, 20, 20, 10]


def test_a_heading_change_starts_a_new_chunk_and_the_overlap_stays_under_its_heading():
    sections = [
        Section("Intro words here.", heading_path=("Guide",)),
        Section(words(12, "a") + ".\n\n" + words(12, "b") + ".", heading_path=("Guide", "Setup")),
        Section("Closing words.", heading_path=("Guide", "Setup", "Notes")),
    ]
    chunks = chunk_sections(sections, count_words, chunk_tokens=16, overlap_tokens=4)
    assert [c.heading_path for c in chunks] == [("Guide",), ("Guide", "Setup"), ("Guide", "Setup"),
                                                ("Guide", "Setup", "Notes")]
    assert chunks[0].text == "Intro words here."
    assert chunks[1].text == words(12, "a") + "."
    assert chunks[2].text == "a8 a9 a10 a11.\n\n" + words(12, "b") + "."  # overlap from its own heading
    assert chunks[3].text == "Closing words."  # no overlap across a heading


def test_a_long_paragraph_is_split_at_sentence_ends_then_at_spaces():
    sentences = [words(9, f"s{n}w") + "." for n in range(4)]
    long_sentence = words(50, "x") + "."
    text = " ".join(sentences) + "\n\n" + long_sentence
    chunks = chunk_sections([Section(text)], count_words, chunk_tokens=20, overlap_tokens=0)
    assert [c.text for c in chunks[:2]] == [" ".join(sentences[:2]), " ".join(sentences[2:])]
    rest = chunks[2:]
    assert all(c.token_count <= 20 for c in rest)
    assert " ".join(c.text for c in rest) == long_sentence  # cut at spaces, nothing lost or repeated


def test_overlap_repeats_the_end_of_the_previous_chunk_from_a_sentence_start():
    text = "One two three four five six. Seven eight nine. Ten eleven twelve thirteen fourteen."
    chunks = chunk_sections([Section(text)], count_words, chunk_tokens=10, overlap_tokens=4)
    # "Seven eight nine." is the last sentence of the first chunk and fits in 4 tokens
    assert chunks[0].text == "One two three four five six. Seven eight nine."
    assert chunks[1].text == "Seven eight nine. Ten eleven twelve thirteen fourteen."
    assert chunks[1].token_count == 8
    assert all(c.token_count <= 10 for c in chunks)


def test_overlap_moves_on_to_a_sentence_start_inside_it():
    paragraphs = ["Alpha beta gamma delta. Epsilon zeta.", words(8, "b")]
    chunks = chunk_sections([Section("\n\n".join(paragraphs))], count_words, chunk_tokens=12, overlap_tokens=4)
    # the last 4 words would be "gamma delta. Epsilon zeta."; the overlap starts at "Epsilon"
    assert [c.text for c in chunks] == [paragraphs[0], "Epsilon zeta.\n\n" + paragraphs[1]]
    assert chunks[1].token_count == 10


def test_overlap_without_a_sentence_start_takes_whole_words():
    paragraphs = [words(8, "a"), words(8, "b")]
    chunks = chunk_sections([Section("\n\n".join(paragraphs))], count_words, chunk_tokens=12, overlap_tokens=3)
    assert [c.text for c in chunks] == [paragraphs[0], "a5 a6 a7\n\n" + paragraphs[1]]


def test_chunks_keep_page_ranges_and_line_ranges():
    pdf = [Section(words(6, f"page{p}w"), page=p, heading_path=("Report",)) for p in (1, 2, 3)]
    chunks = chunk_sections(pdf, count_words, chunk_tokens=13, overlap_tokens=0)
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 1), (2, 2), (3, 3)]  # a chunk stays on its page
    assert all(c.line_start is None for c in chunks)

    # lines 10..19 of a text file: paragraphs on lines 10-11, 13 and 16-19
    text = "alpha beta\ngamma delta\n\nepsilon zeta\n\n\nfirst second\nthird\nfourth\nfifth sixth"
    chunks = chunk_sections([Section(text, lines=(10, 19))], count_words, chunk_tokens=6, overlap_tokens=0)
    assert [c.text.split() for c in chunks] == [["alpha", "beta", "gamma", "delta", "epsilon", "zeta"],
                                                ["first", "second", "third", "fourth", "fifth", "sixth"]]
    assert [(c.line_start, c.line_end) for c in chunks] == [(10, 13), (16, 19)]
    assert all(c.page_start is None for c in chunks)


def test_empty_sections_give_no_chunks_and_bad_settings_are_refused():
    assert chunk_sections([Section(""), Section(" \n\n  ")], count_words) == []
    with pytest.raises(InvalidInput):
        chunk_sections([Section("x")], count_words, chunk_tokens=100, overlap_tokens=60)


def test_budgets_hold_in_the_embedding_models_own_tokens(counter, embedding_client):
    assert counter(["hello world", ""]) == [2, 0]  # [CLS] and [SEP] are not counted
    text = ("Der schnelle braune Fuchs springt über den faulen Hund, während die Sonne untergeht. "
            "Le café est très chaud ce matin, n'est-ce pas ? The committee's preliminary findings — "
            "published on 2024-03-01 — were inconclusive. ") * 12
    sections = [Section(text, lines=(1, 1), heading_path=("Mixed",)), Section("Short tail.", lines=(3, 3))]
    chunks = chunk_sections(sections, counter, chunk_tokens=64, overlap_tokens=16)
    assert len(chunks) > 5
    recounted = counter([c.text for c in chunks])
    assert recounted == [c.token_count for c in chunks]  # WordPiece: pieces meet at spaces, counts add up
    assert max(recounted) <= 64
    assert embedding_client.embed([c.text for c in chunks]).shape == (len(chunks), 384)


def test_the_token_counter_stops_when_cancelled(embedding_client):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        HostTokenCounter(embedding_client, cancel)(["anything"])


# --- the repository -----------------------------------------------------------------------------------

def stored(text: str, ordinal: int = 0) -> Chunk:
    return Chunk(text=text, heading_path=("H",), token_count=len(text.split()), line_start=ordinal + 1,
                 line_end=ordinal + 1)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def fts_ids(conn, word: str) -> list[int]:
    return [r[0] for r in conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rowid",
                                       (f'"{word}"',))]


def add_document(repo, collection_id, path, texts, vectors=None, sha="a" * 64):
    document = repo.upsert_document(collection_id, path, sha256=sha, size=10, mtime=1.0, kind="text")
    vectors = vectors if vectors is not None else np.eye(len(texts), 4, dtype=np.float32)
    repo.replace_document_chunks(document.id, [stored(t, i) for i, t in enumerate(texts)], vectors)
    return document


def test_replacing_a_documents_chunks_is_one_unit(conn, repo):
    collection = repo.create_collection("Notes")
    document = add_document(repo, collection.id, "/n/a.txt", ["old apples", "old pears", "old plums"])
    before = [c.text for c in repo.chunks_of(document.id)]
    broken = [stored("new apples"), stored("new pears"), Chunk(None, (), 0)]  # NOT NULL fails at the third
    with pytest.raises(DatabaseError):
        repo.replace_document_chunks(document.id, broken, np.eye(3, 4, dtype=np.float32))
    assert [c.text for c in repo.chunks_of(document.id)] == before
    assert len(fts_ids(conn, "apples")) == 1 and fts_ids(conn, "new") == []
    assert repo.counts(collection.id).vectors == 3
    assert repo.integrity_report().ok

    # inside a caller's transaction it is a savepoint: the caller goes on and commits the rest
    with Transaction(conn):
        repo.set_document_status(document.id, "changed")
        with pytest.raises(DatabaseError):
            repo.replace_document_chunks(document.id, broken, np.eye(3, 4, dtype=np.float32))
    assert repo.get_document(document.id).status == "changed"
    assert [c.text for c in repo.chunks_of(document.id)] == before

    ids = repo.replace_document_chunks(document.id, [stored("new apples")], [unit(1, 1, 0, 0)])
    assert [c.text for c in repo.chunks_of(document.id)] == ["new apples"]
    assert fts_ids(conn, "apples") == ids and fts_ids(conn, "pears") == []
    assert repo.get_document(document.id).status == "indexed"
    assert repo.counts(collection.id).vectors == 1 and repo.integrity_report().ok


def test_vectors_of_another_size_or_number_are_refused(repo):
    collection = repo.create_collection("Dims")
    document = add_document(repo, collection.id, "/d.txt", ["one", "two"])
    with pytest.raises(InvalidInput, match="2 chunks need 2 vectors"):
        repo.replace_document_chunks(document.id, [stored("a"), stored("b")], np.ones((1, 4), np.float32))
    with pytest.raises(InvalidInput, match="holds 4"):
        repo.replace_document_chunks(document.id, [stored("a")], np.ones((1, 8), np.float32))
    assert [c.text for c in repo.chunks_of(document.id)] == ["one", "two"]


def test_removing_a_document_leaves_no_fts_row_or_vector(conn, repo):
    collection = repo.create_collection("Removal")
    keep = add_document(repo, collection.id, "/keep.txt", ["kept walnut"])
    gone = add_document(repo, collection.id, "/gone.txt", ["gone walnut", "gone hazelnut"])
    repo.remove_document(gone.id)
    assert fts_ids(conn, "walnut") == [c.id for c in repo.chunks_of(keep.id)]
    assert fts_ids(conn, "hazelnut") == []
    assert conn.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0] == 1
    assert repo.integrity_report().ok

    # a deleted file leaves the index
    assert repo.remove_missing(collection.id, []) == ["/keep.txt"]
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == 0
    assert repo.integrity_report().ok


def test_the_integrity_report_sees_a_chunk_without_its_vector(conn, repo):
    collection = repo.create_collection("Broken")
    add_document(repo, collection.id, "/b.txt", ["first", "second"])
    conn.execute("DELETE FROM chunk_vectors WHERE chunk_id = (SELECT min(id) FROM chunks)")
    report = repo.integrity_report()
    assert (report.chunks_without_vector, report.fts_rows_without_chunk, report.ok) == (1, 0, False)
    conn.execute("DROP TRIGGER chunks_fts_delete")  # now a deleted chunk leaves its FTS row behind
    conn.execute("DELETE FROM chunks")
    report = repo.integrity_report()
    assert report.fts_rows_without_chunk == 2 and not report.fts_consistent


def test_unchanged_files_are_reported_unchanged(repo):
    collection = repo.create_collection("Incremental")
    add_document(repo, collection.id, "/same.txt", ["s"], sha="1" * 64)
    add_document(repo, collection.id, "/edited.txt", ["e"], sha="2" * 64)
    repo.upsert_document(collection.id, "/failed.txt", sha256="3" * 64, size=1, mtime=1, kind="text",
                         status="failed", error="could not read")
    seen = {"/same.txt": "1" * 64, "/edited.txt": "f" * 64, "/failed.txt": "3" * 64, "/new.txt": "4" * 64}
    assert repo.unchanged_paths(collection.id, seen) == {"/same.txt"}
    other = repo.create_collection("Other")
    assert repo.unchanged_paths(other.id, seen) == set()
    counts = repo.counts(collection.id)
    assert (counts.documents, counts.by_status["indexed"], counts.by_status["failed"], counts.chunks) == (3, 2, 1, 2)


def test_another_embedding_model_empties_the_collection(repo):
    collection = repo.create_collection("Models", embedding_model_path="/m/a.gguf", embedding_model_sha256="aa")
    document = add_document(repo, collection.id, "/x.txt", ["x"])
    same = repo.change_embedding(collection.id, "/m/a-moved.gguf", "aa", {})
    assert same.embedding_dim == 4 and repo.chunks_of(document.id) != []
    changed = repo.change_embedding(collection.id, "/m/b.gguf", "bb", {"chunk_tokens": 128})
    assert changed.settings == {"chunk_tokens": 128, "overlap_tokens": 32}
    assert changed.embedding_dim is None and changed.built_with("bb", {"chunk_tokens": 128})
    assert repo.chunks_of(document.id) == [] and repo.get_document(document.id).status == "changed"
    assert repo.integrity_report().ok


def test_collections_are_created_renamed_and_deleted_with_everything_in_them(conn, repo):
    notes = repo.create_collection(" Notes ")
    assert notes.name == "Notes" and notes.settings == {"chunk_tokens": 256, "overlap_tokens": 32}
    with pytest.raises(InvalidInput, match="already"):
        repo.create_collection("Notes")
    papers = repo.create_collection("Papers")
    with pytest.raises(InvalidInput, match="already"):
        repo.rename_collection(papers.id, "Notes")
    assert repo.rename_collection(papers.id, "Articles").name == "Articles"
    assert [c.name for c in repo.list_collections()] == ["Articles", "Notes"]
    repo.add_source(notes.id, "/home/me/notes", "folder")
    repo.add_source(notes.id, "/home/me/notes", "folder")
    assert [s.path for s in repo.list_sources(notes.id)] == ["/home/me/notes"]
    add_document(repo, notes.id, "/home/me/notes/a.md", ["alpha", "beta"])
    repo.delete_collection(notes.id)
    for table in ("collection_sources", "documents", "chunks", "chunk_vectors", "chunks_fts_docsize"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert repo.integrity_report().ok


# --- retrieval ----------------------------------------------------------------------------------------

def test_fusion_adds_reciprocal_ranks():
    scores = fuse([[10, 20, 30], [30, 40]])
    assert scores == pytest.approx({10: 1 / 61, 20: 1 / 62, 30: 1 / 63 + 1 / 61, 40: 1 / 62})


def test_hybrid_ranks_and_fused_scores_on_a_constructed_case(conn, repo):
    """BM25 ranks a > b > c (how often 'lantern' appears), vectors rank c > d > b; c is in both lists high."""
    collection = repo.create_collection("Constructed")
    texts = ["lantern lantern lantern oil", "lantern lantern wick", "lantern glass", "candle flame"]
    vectors = [unit(0, 0, 0, 1), unit(0.3, 1, 0, 0), unit(1, 0, 0, 0), unit(1, 0.5, 0, 0)]
    add_document(repo, collection.id, "/lamps.txt", texts, np.stack(vectors))
    ids = [c.id for c in repo.chunks_of(repo.find_document(collection.id, "/lamps.txt").id)]
    query_vector = unit(1, 0.1, 0, 0)
    hits = search(conn, [collection.id], "lantern", query_vector, k=4, vectors=VectorStore())
    by_id = {h.chunk_id: h for h in hits}
    a, b, c, d = ids
    assert {cid: (by_id[cid].bm25_rank, by_id[cid].vector_rank) for cid in ids} == {
        a: (1, 4), b: (2, 3), c: (3, 1), d: (None, 2)}
    expected = {a: 1 / 61 + 1 / 64, b: 1 / 62 + 1 / 63, c: 1 / 63 + 1 / 61, d: 1 / 62}
    assert {h.chunk_id: h.score for h in hits} == pytest.approx(expected)
    assert [h.chunk_id for h in hits] == sorted(expected, key=lambda cid: -expected[cid])  # c, a, b, d... by score
    assert by_id[c].similarity == pytest.approx(float(vectors[2] @ query_vector))
    assert (hits[0].path, hits[0].line_start, hits[0].heading_path) == ("/lamps.txt", 3, ("H",))

    only_bm25 = search(conn, [collection.id], "lantern", None, k=4, mode="bm25")
    assert [h.chunk_id for h in only_bm25] == [a, b, c] and {h.vector_rank for h in only_bm25} == {None}
    only_vector = search(conn, [collection.id], "lantern", query_vector, k=2, mode="vector")
    assert [(h.chunk_id, h.score) for h in only_vector] == [(c, pytest.approx(1 / 61)), (d, pytest.approx(1 / 62))]
    assert RRF_K == 60


@pytest.mark.parametrize("query", [
    '"', '""', "'", "*", "-", "-lantern", "lantern*", "NEAR(lantern glass)", "lantern NEAR glass", "AND OR NOT",
    "^lantern", "col:lantern", "(((", "lantern) OR (", "{glass}", "+glass", "lantern\x00glass", "   ", "",
])
def test_queries_of_odd_characters_do_not_break_fts(conn, repo, query):
    collection = repo.create_collection("Odd")
    add_document(repo, collection.id, "/odd.txt", ["lantern glass", "near and or not"])
    hits = search(conn, [collection.id], query, None, mode="bm25")
    words_in_query = set(re.findall(r"\w+", query.lower()))
    if words_in_query & {"lantern", "glass"}:
        assert hits and hits[0].text == "lantern glass"
    if not words_in_query:
        assert hits == [] and fts_query(query) == ""


def test_words_in_most_chunks_do_not_flood_the_bm25_list(conn, repo):
    """'the' is in every chunk: it weighs nothing in BM25 but would put every chunk in the list."""
    collection = repo.create_collection("Common")
    add_document(repo, collection.id, "/c.txt", ["the lantern", "the glass", "the oil", "the wick"])
    assert [h.text for h in search(conn, [collection.id], "The lantern?", None, mode="bm25")] == ["the lantern"]
    assert len(search(conn, [collection.id], "the", None, mode="bm25")) == 4  # nothing else to go by
    assert query_terms("Pâte à crêpes, NEAR l'œuf") == ["pate", "a", "crepes", "near", "l", "œuf"]


def test_the_vector_store_reloads_when_the_collection_changes(conn, repo):
    collection = repo.create_collection("Live")
    store = VectorStore()
    add_document(repo, collection.id, "/one.txt", ["north"], np.stack([unit(1, 0, 0, 0)]))
    query = unit(0, 1, 0, 0)
    assert [h.text for h in search(conn, [collection.id], "", query, k=1, mode="vector", vectors=store)] == ["north"]
    add_document(repo, collection.id, "/two.txt", ["east"], np.stack([unit(0, 1, 0, 0)]))
    assert [h.text for h in search(conn, [collection.id], "", query, k=1, mode="vector", vectors=store)] == ["east"]
    repo.remove_document(repo.find_document(collection.id, "/two.txt").id)
    assert [h.text for h in search(conn, [collection.id], "", query, k=1, mode="vector", vectors=store)] == ["north"]


def test_exact_top_k_equals_a_full_sort(conn, repo):
    rng = np.random.default_rng(3)
    collection = repo.create_collection("Random")
    matrix = rng.standard_normal((300, 16)).astype(np.float32)
    add_document(repo, collection.id, "/r.txt", [f"row {i}" for i in range(300)], matrix)
    ids = np.array([c.id for c in repo.chunks_of(repo.find_document(collection.id, "/r.txt").id)])
    query = rng.standard_normal(16).astype(np.float32)
    unit_rows = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    expected = ids[np.argsort(-(unit_rows @ (query / np.linalg.norm(query))))[:10]]
    assert [cid for cid, _ in VectorStore().search(conn, [collection.id], query, 10)] == list(expected)


PARAGRAPHS = {
    "sourdough": "To keep a sourdough starter healthy, feed it equal weights of flour and water every day and "
                 "keep it at room temperature. A lively starter doubles within a few hours and smells pleasantly sour.",
    "bicycle": "A bicycle chain that squeaks needs cleaning and a few drops of lubricant on each link. Wipe off the "
               "excess oil afterwards, or dirt will stick to it and wear out the sprockets.",
    "venv": "Create a virtual environment with python -m venv, activate it, and install packages with pip, so that "
            "every project keeps its own set of dependencies apart from the others.",
    "tomatoes": "Tomato plants need at least six hours of direct sunlight, deep watering twice a week, and a stake "
                "or cage to support the stems once the fruit sets.",
    "aurora": "The aurora borealis appears when charged particles from the solar wind strike the upper atmosphere "
              "near the poles; it is best seen on dark winter nights far from city lights.",
    "taxes": "Income tax returns must be filed by the deadline; keep receipts for deductible expenses such as work "
             "equipment and charitable donations for several years.",
    "marathon": "Training for a marathon takes about four months: build up the weekly mileage slowly, include one "
                "long run every week, and taper before race day.",
    "espresso": "Espresso is brewed by forcing hot water through finely ground coffee under about nine bars of "
                "pressure, which produces a thick crema on top.",
    "cats": "Cats sleep between twelve and sixteen hours a day; kittens and elderly cats doze even longer, mostly "
            "in short naps spread over the day and night.",
    "volcano": "A volcano erupts when molten rock rises through cracks in the crust and gas pressure forces lava, "
               "ash and rocks out of the vent.",
    "chess": "In chess, castling moves the king two squares toward a rook and puts that rook on the square the king "
             "crossed; it is allowed only if neither piece has moved before.",
    "bahn": "Die Deutsche Bahn empfiehlt, Fahrkarten für den Fernverkehr früh zu buchen, weil Sparpreise mit der "
            "Zeit teurer werden. Eine BahnCard 25 senkt den Preis jeder Fahrt.",
    "lueften": "Im Winter sollte man die Wohnung mehrmals täglich kurz lüften, statt das Fenster dauerhaft gekippt "
               "zu lassen; so bleibt die Wärme in den Wänden und es bildet sich kein Schimmel.",
    "crepes": "Pour réussir une pâte à crêpes, mélangez la farine, les œufs et le lait, puis laissez reposer la pâte "
              "une heure avant la cuisson dans une poêle bien chaude.",
    "louvre": "Le musée du Louvre est fermé le mardi ; il est conseillé de réserver un créneau horaire en ligne pour "
              "éviter la file d'attente devant la pyramide.",
}

QUESTIONS = [
    ("How often should I feed my bread starter?", "sourdough"),
    ("My bike chain makes a squeaking noise, what should I do?", "bicycle"),
    ("How do I keep each Python project's libraries separate?", "venv"),
    ("How much sun does a tomato need?", "tomatoes"),
    ("Why does the night sky glow near the poles?", "aurora"),
    ("Which receipts do I need to keep for deductions?", "taxes"),
    ("How should I train for a long-distance race?", "marathon"),
    ("How is espresso coffee made?", "espresso"),
    ("How many hours a day do cats sleep?", "cats"),
    ("Where does lava come from?", "volcano"),
    ("When may a king castle?", "chess"),
    ("Wann sollte man Fahrkarten für den Zug buchen?", "bahn"),
    ("Wie lüftet man im Winter richtig gegen Schimmel?", "lueften"),
    ("Combien de temps faut-il laisser reposer la pâte ?", "crepes"),
    ("Quel jour le Louvre est-il fermé ?", "louvre"),
]


# Paraphrases that share no word with their paragraph: BM25 cannot find them, the vectors must.
PARAPHRASES = [
    ("Why do polar skies light up in colours after dark?", "aurora"),
    ("How do I prepare for running 42 kilometres?", "marathon"),
    ("Keeping dependencies isolated between codebases", "venv"),
    ("How do I grow tomatoes?", "tomatoes"),
]


def test_hybrid_retrieval_puts_the_right_paragraph_first(conn, repo, counter, embedding_client):
    collection = repo.create_collection("Topics")
    for name, text in PARAGRAPHS.items():
        chunks = chunk_sections([Section(text, lines=(1, 1))], counter)
        document = repo.upsert_document(collection.id, f"/topics/{name}.txt", sha256=name, size=len(text),
                                        mtime=1.0, kind="text")
        repo.replace_document_chunks(document.id, chunks, embedding_client.embed([c.text for c in chunks]))
    assert repo.counts(collection.id).chunks == len(PARAGRAPHS) and repo.integrity_report().ok
    store = VectorStore()
    questions = QUESTIONS + PARAPHRASES
    query_vectors = embedding_client.embed([question for question, _ in questions])
    first = {mode: {} for mode in ("hybrid", "bm25", "vector")}
    for (question, _), vector in zip(questions, query_vectors, strict=True):
        for mode, tops in first.items():
            hits = search(conn, [collection.id], question, vector, k=3, mode=mode, vectors=store)
            tops[question] = hits[0].path.rsplit("/", 1)[1].removesuffix(".txt") if hits else None
    expected = dict(questions)
    assert {q: top for q, top in first["hybrid"].items() if top != expected[q]} == {}
    # each list alone misses some that the fusion finds: the words carry the German one, the meaning the rest
    assert all(first["bm25"][q] != topic for q, topic in PARAPHRASES)
    assert first["vector"]["Wann sollte man Fahrkarten für den Zug buchen?"] != "bahn"


def test_a_title_with_only_subsections_under_it_leads_the_next_chunk():
    sections = [
        Section("Trip notes", lines=(1, 1), heading_path=("Trip notes",)),
        Section("Flights", lines=(3, 3), heading_path=("Trip notes", "Flights")),
        Section("The flight lands at 09:40.", lines=(5, 5), heading_path=("Trip notes", "Flights")),
        Section("Budget", lines=(7, 7), heading_path=("Budget",)),  # a sibling, not a subsection: its own chunk
        Section("Sixty euros a day.", lines=(9, 9), heading_path=("Budget",)),
    ]
    chunks = chunk_sections(sections, count_words, chunk_tokens=50, overlap_tokens=0)
    assert [c.heading_path for c in chunks] == [("Trip notes", "Flights"), ("Budget",)]
    assert chunks[0].text == "Trip notes\n\nFlights\n\nThe flight lands at 09:40."
    assert (chunks[0].line_start, chunks[0].line_end) == (1, 5)
