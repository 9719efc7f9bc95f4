"""Query latency of hybrid retrieval (FTS5 BM25 + exact numpy vectors + rank fusion) at 1k / 10k / 100k chunks.

No model: the vectors are random unit vectors of 384 dimensions (all-MiniLM-L6-v2's size) and the
texts are generated from a 5,000-word vocabulary drawn with a Zipf law, so some words are in almost
every chunk, as "the" and "is" are in real text. A query has 6 words, as a question does: 4 drawn by
the same law (its "what is the") and 2 drawn evenly from the vocabulary (its content words). The database is a real ember.db in a temporary folder, written through
DocumentsRepository.replace_document_chunks (100 chunks per document). The figures exclude the
query's embedding (the host's work) and the first query after a change (the matrix load, shown apart).

    python benchmarks/rag_query.py [--sizes 1000 10000 100000] [--queries 50]
    python benchmarks/rag_query.py --smoke      # 1k chunks, a few queries (CI)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.rag.retrieve import search  # noqa: E402
from engine.rag.vectors import VectorStore  # noqa: E402
from engine.store.db import connect  # noqa: E402
from engine.store.documents_repo import DocumentsRepository  # noqa: E402

DIM = 384
WORDS_PER_CHUNK = 120
CHUNKS_PER_DOCUMENT = 100
VOCABULARY = 5000


class Chunk:
    """What replace_document_chunks needs of a chunk."""

    def __init__(self, text: str, ordinal: int) -> None:
        self.text = text
        self.page_start = self.page_end = None
        self.line_start, self.line_end = ordinal * 10 + 1, ordinal * 10 + 10
        self.heading_path = ("Generated",)
        self.token_count = WORDS_PER_CHUNK


class Corpus:
    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dor", "fen", "gal", "hum"]
        words: set[str] = set()
        while len(words) < VOCABULARY:
            words.add("".join(self.rng.choice(syllables, size=self.rng.integers(2, 5))))
        self.words = np.array(sorted(words))
        weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.1
        self.weights = weights / weights.sum()

    def text(self, n_words: int) -> str:
        return " ".join(self.rng.choice(self.words, size=n_words, p=self.weights))

    def query(self) -> str:
        return " ".join([*self.rng.choice(self.words, size=4, p=self.weights), *self.rng.choice(self.words, size=2)])

    def texts(self, n: int, n_words: int) -> list[str]:
        drawn = self.rng.choice(self.words, size=(n, n_words), p=self.weights)
        return [" ".join(row) for row in drawn]

    def vectors(self, n: int) -> np.ndarray:
        matrix = self.rng.standard_normal((n, DIM)).astype(np.float32)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def grow(repo: DocumentsRepository, collection_id: int, corpus: Corpus, start: int, stop: int) -> float:
    """Add chunks start..stop (in documents of 100); returns the seconds it took."""
    began = time.perf_counter()
    for first in range(start, stop, CHUNKS_PER_DOCUMENT):
        n = min(CHUNKS_PER_DOCUMENT, stop - first)
        document = repo.upsert_document(collection_id, f"/bench/doc-{first:07d}.txt", sha256=f"{first:064x}",
                                        size=n * 800, mtime=0.0, kind="text")
        chunks = [Chunk(text, i) for i, text in enumerate(corpus.texts(n, WORDS_PER_CHUNK))]
        repo.replace_document_chunks(document.id, chunks, corpus.vectors(n))
    return time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure(conn, collection_id: int, corpus: Corpus, store: VectorStore, queries: int, mode: str) -> list[float]:
    times = []
    for _ in range(queries):
        query, vector = corpus.query(), corpus.vectors(1)[0]
        began = time.perf_counter()
        hits = search(conn, [collection_id], query, vector, k=5, candidates=50, mode=mode, vectors=store)
        times.append(time.perf_counter() - began)
        assert hits, "a query found nothing"
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="1k chunks, 5 queries (CI)")
    args = parser.parse_args()
    sizes, queries = ([1_000], 5) if args.smoke else (sorted(args.sizes), max(5, args.queries))
    corpus = Corpus()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ember-rag-bench-") as folder:
        conn = connect(Path(folder) / "ember.db")
        repo = DocumentsRepository(conn)
        collection = repo.create_collection("bench")
        store = VectorStore()
        have = 0
        for size in sizes:
            build_s = grow(repo, collection.id, corpus, have, size)
            written = size - have
            have = size
            began = time.perf_counter()
            store.matrix(conn, collection.id)
            load_s = time.perf_counter() - began
            measure(conn, collection.id, corpus, store, 2, "hybrid")  # warm the page cache
            hybrid = measure(conn, collection.id, corpus, store, queries, "hybrid")
            bm25 = measure(conn, collection.id, corpus, store, queries, "bm25")
            vector = measure(conn, collection.id, corpus, store, queries, "vector")
            rows.append((size, written / build_s, load_s, hybrid, bm25, vector))
        conn.close()
    print(f"{queries} queries of 6 words (4 common, 2 content) per size, k=5, 50 candidates per list, {DIM}-dim vectors, "
          f"{WORDS_PER_CHUNK}-word chunks")
    print(f"{'chunks':>8} {'write/s':>8} {'load ms':>8} {'hybrid p50':>11} {'p95':>7} {'bm25 p50':>9} "
          f"{'vector p50':>11}")
    for size, rate, load_s, hybrid, bm25, vector in rows:
        print(f"{size:>8} {rate:>8.0f} {load_s * 1000:>8.0f} {statistics.median(hybrid) * 1000:>9.1f}ms "
              f"{percentile(hybrid, 95) * 1000:>5.1f}ms {statistics.median(bm25) * 1000:>7.1f}ms "
              f"{statistics.median(vector) * 1000:>9.1f}ms")
    size, _, _, hybrid, _, _ = rows[-1]
    print(f"summary: hybrid query p50 {statistics.median(hybrid) * 1000:.1f} ms, "
          f"p95 {percentile(hybrid, 95) * 1000:.1f} ms at {size} chunks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
