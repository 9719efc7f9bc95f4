"""Exact vector search: each collection's vectors as one float32 matrix in memory.

With unit vectors the cosine similarity is a dot product, so the scores of a query against every chunk
are one matrix-vector product, and the best k come from `np.argpartition` (no full sort). That is
exact and fast enough well past 100,000 chunks of 384 dimensions (benchmarks/rag_query.py); an
approximate index can come when a collection outgrows it.

A matrix is loaded on first use and reloaded when the collection's `version` (which goes up with
every change of its chunks) differs from the one it was loaded at. The version is read before the
vectors, so a change between the two reads only causes one more reload, never a stale matrix.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.errors import InvalidInput
from engine.store.documents_repo import DocumentsRepository


@dataclass(frozen=True)
class VectorMatrix:
    """One collection's vectors at one version: row i is the vector of chunk `chunk_ids[i]`."""

    version: int
    chunk_ids: np.ndarray  # int64, n
    matrix: np.ndarray  # float32, n × dim, rows of unit length

    def top_k(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks, best first."""
        if len(self.chunk_ids) == 0 or k <= 0:
            return []
        if query.shape != (self.matrix.shape[1],):
            raise InvalidInput(f"The query vector has {query.shape[-1]} dimensions; this collection's vectors "
                               f"have {self.matrix.shape[1]}.", "Search with the model that built the collection.")
        scores = self.matrix @ query
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((self.chunk_ids[best], -scores[best]))]  # by score, ties by chunk id
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in best]


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


class VectorStore:
    """The matrices of the collections searched so far, shared by the threads that search (each with
    its own connection). Build it once (app services, the CLI) and pass it to `retrieve.search`."""

    def __init__(self) -> None:
        self._matrices: dict[int, VectorMatrix] = {}
        self._lock = threading.Lock()

    def matrix(self, conn: sqlite3.Connection, collection_id: int) -> VectorMatrix:
        """The collection's current vectors, loaded again only when they changed."""
        repo = DocumentsRepository(conn)
        version = repo.versions([collection_id]).get(collection_id)
        with self._lock:
            cached = self._matrices.get(collection_id)
            if version is None:  # the collection is gone
                self._matrices.pop(collection_id, None)
                return VectorMatrix(0, np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32))
            if cached is not None and cached.version == version:
                return cached
        ids, matrix = repo.vectors(collection_id)
        loaded = VectorMatrix(version, ids, _unit(matrix) if len(ids) else matrix)
        with self._lock:
            self._matrices[collection_id] = loaded
        return loaded

    def search(self, conn: sqlite3.Connection, collection_ids: Iterable[int], query: np.ndarray,
               k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks across these collections, best first."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(query))
        if norm == 0:
            return []
        query = query / norm
        found = [hit for cid in dict.fromkeys(collection_ids) for hit in self.matrix(conn, cid).top_k(query, k)]
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found[:k]

    def forget(self, collection_id: int) -> None:
        """Drop a matrix from memory (a deleted collection); it would also go at the next search."""
        with self._lock:
            self._matrices.pop(collection_id, None)
