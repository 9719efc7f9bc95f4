"""Hybrid retrieval: BM25 (SQLite FTS5) and vector similarity, fused by reciprocal rank fusion.

Each list ranks its best `candidates` chunks; a chunk's fused score is the sum over the lists it is
in of 1 / (RRF_K + rank), rank 1-based (Cormack, Clarke and Büttcher, 2009). Ranks rather than scores
are fused because BM25 scores and cosine similarities have no common scale. RRF_K = 60, as in the
paper: it keeps one list's first place from outweighing a chunk that both lists put high.
Modes "bm25" and "vector" use one list alone (for the retrieval bench); their score is the same
1 / (RRF_K + rank), so the three modes' scores read alike.

Every hit keeps its rank in each list (None: not among that list's candidates), which the
retrieval inspector and `ember ask` show.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.errors import InvalidInput
from engine.rag.vectors import VectorStore
from engine.store.documents_repo import DocumentsRepository

RRF_K = 60
MODES = ("hybrid", "bm25", "vector")
MAX_QUERY_TERMS = 32
_TERM = re.compile(r"\w+")


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    collection_id: int
    path: str
    text: str
    heading_path: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    line_start: int | None
    line_end: int | None
    score: float  # the fused score (higher is better)
    bm25_rank: int | None
    vector_rank: int | None
    similarity: float | None = None  # cosine similarity to the query, when it was among the vector candidates


def query_terms(text: str) -> list[str]:
    """The words of a query as FTS5 stores its tokens (unicode61, remove_diacritics 2): lower case,
    accents dropped; each once, at most MAX_QUERY_TERMS."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return list(dict.fromkeys(_TERM.findall(folded)))[:MAX_QUERY_TERMS]


def fts_query(terms: list[str] | str) -> str:
    """A safe FTS5 query: the words, each quoted (so NEAR, AND, *, - and quotes are plain text), joined
    by OR, so a chunk with some of the words still ranks (BM25 weighs them)."""
    if isinstance(terms, str):
        terms = query_terms(terms)
    return " OR ".join(f'"{term}"' for term in terms)


def informative_terms(repo: DocumentsRepository, terms: list[str]) -> list[str]:
    """The terms minus those in more than half of all chunks (unless nothing would be left).

    Such a term weighs nothing in FTS5's BM25 (a negative IDF is clamped to 1e-6), yet makes it score
    nearly every chunk, and only adds chunks whose score is 0 to the list. Measured at 100,000 chunks
    (benchmarks/rag_query.py, 2 cores): BM25 of a 6-word question took 130 ms p50 with them, 24 ms
    without (the look-up of how common each term is included)."""
    if len(terms) < 2:
        return terms
    half = repo.chunk_count() / 2
    counts = repo.term_document_counts(terms)
    return [term for term in terms if counts[term] <= half] or terms


def fuse(ranked_lists: Iterable[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion of lists of ids, best first: id -> sum of 1 / (k + rank)."""
    scores: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def search(conn: sqlite3.Connection, collection_ids: Iterable[int], query: str, query_vector: np.ndarray | None,
           k: int = 5, candidates: int = 50, *, mode: str = "hybrid", vectors: VectorStore | None = None) -> list[Hit]:
    """The k best chunks for a query in these collections, best first.

    `query_vector`: the query embedded by the collection's model (not needed in mode "bm25").
    `vectors`: the shared in-memory matrices; without one, the vectors are read from the database on
    every call (correct, but slow for a large collection)."""
    if mode not in MODES:
        raise InvalidInput(f"Unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}.")
    if mode != "bm25" and query_vector is None:
        raise InvalidInput("Vector retrieval needs the query's embedding.")
    collection_ids = list(dict.fromkeys(collection_ids))
    repo = DocumentsRepository(conn)
    bm25_ids: list[int] = []
    vector_hits: list[tuple[int, float]] = []
    if mode != "vector":
        terms = informative_terms(repo, query_terms(query))
        bm25_ids = [chunk_id for chunk_id, _ in repo.bm25(fts_query(terms), collection_ids, candidates)]
    if mode != "bm25":
        vector_hits = (vectors or VectorStore()).search(conn, collection_ids, query_vector, candidates)
    vector_ids = [chunk_id for chunk_id, _ in vector_hits]
    bm25_rank = {chunk_id: rank for rank, chunk_id in enumerate(bm25_ids, start=1)}
    vector_rank = {chunk_id: rank for rank, chunk_id in enumerate(vector_ids, start=1)}
    similarity = dict(vector_hits)
    fused = fuse([bm25_ids, vector_ids])
    best_rank = lambda cid: min(bm25_rank.get(cid, candidates + 1), vector_rank.get(cid, candidates + 1))  # noqa: E731
    order = sorted(fused, key=lambda cid: (-fused[cid], best_rank(cid), cid))
    order = order[: k * 2]  # a few spare: a chunk deleted since its vectors were loaded is skipped
    sources = repo.chunk_sources(order)
    hits = []
    for chunk_id in order:
        source = sources.get(chunk_id)
        if source is None:
            continue
        chunk = source.chunk
        hits.append(Hit(
            chunk_id=chunk_id, document_id=chunk.document_id, collection_id=source.collection_id,
            path=source.path, text=chunk.text, heading_path=chunk.heading_path, page_start=chunk.page_start,
            page_end=chunk.page_end, line_start=chunk.line_start, line_end=chunk.line_end, score=fused[chunk_id],
            bm25_rank=bm25_rank.get(chunk_id), vector_rank=vector_rank.get(chunk_id),
            similarity=similarity.get(chunk_id),
        ))
        if len(hits) == k:
            break
    return hits
