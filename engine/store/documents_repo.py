"""All SQL for document collections: collections, their sources, documents, chunks (+ FTS5) and vectors.

A collection records the embedding model and the chunk settings that built it: its vectors can only
be compared with vectors of the same model, so changing either empties it (`change_embedding`) and
every document is redone. A document's chunks, FTS rows and vectors are replaced as one unit
(`replace_document_chunks`), so a crash or an error mid-way leaves the old ones, never a mix.
`collections.version` goes up with every change of a collection's chunks; the in-memory vector
matrices (engine/rag/vectors.py) compare it to know when to reload.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from engine.errors import InvalidInput, NotFound
from engine.store.db import Transaction, database_errors, to_database_error
from engine.store.schema import DOCUMENT_STATUSES, SOURCE_KINDS

if TYPE_CHECKING:
    import numpy as np

DEFAULT_SETTINGS = {"chunk_tokens": 256, "overlap_tokens": 32}


class ChunkLike(Protocol):
    """What `replace_document_chunks` needs of a chunk (engine.rag.chunker.Chunk has it)."""

    text: str
    page_start: int | None
    page_end: int | None
    line_start: int | None
    line_end: int | None
    heading_path: tuple[str, ...]
    token_count: int


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    created_at: float
    embedding_model_path: str | None
    embedding_model_sha256: str | None
    embedding_dim: int | None
    settings: dict = field(default_factory=dict)
    version: int = 0

    def built_with(self, model_sha256: str | None, settings: Mapping) -> bool:
        """True when this model and these settings made the collection's vectors (nothing to redo)."""
        return self.embedding_model_sha256 == model_sha256 and self.settings == {**DEFAULT_SETTINGS, **settings}


@dataclass(frozen=True)
class Source:
    id: int
    collection_id: int
    path: str
    kind: str
    added_at: float


@dataclass(frozen=True)
class Document:
    id: int
    collection_id: int
    path: str
    sha256: str | None
    size: int | None
    mtime: float | None
    kind: str | None
    pages: int | None
    status: str
    error: str | None
    indexed_at: float | None


@dataclass(frozen=True)
class StoredChunk:
    id: int
    document_id: int
    ordinal: int
    text: str
    page_start: int | None
    page_end: int | None
    line_start: int | None
    line_end: int | None
    heading_path: tuple[str, ...]
    token_count: int


@dataclass(frozen=True)
class ChunkSource:
    """A chunk with the document it comes from: what a search hit shows."""

    chunk: StoredChunk
    collection_id: int
    path: str
    kind: str | None


@dataclass(frozen=True)
class CollectionCounts:
    documents: int
    by_status: dict[str, int]
    chunks: int
    vectors: int
    tokens: int


@dataclass(frozen=True)
class IntegrityReport:
    """What must never happen, counted: each number should be 0 and `fts_consistent` True."""

    chunks_without_vector: int
    vectors_without_chunk: int
    fts_rows_without_chunk: int
    chunks_without_fts_row: int
    fts_consistent: bool

    @property
    def ok(self) -> bool:
        return self.fts_consistent and not (self.chunks_without_vector or self.vectors_without_chunk
                                            or self.fts_rows_without_chunk or self.chunks_without_fts_row)


def _collection(row: sqlite3.Row) -> Collection:
    return Collection(row["id"], row["name"], row["created_at"], row["embedding_model_path"],
                      row["embedding_model_sha256"], row["embedding_dim"], json.loads(row["settings_json"]),
                      row["version"])


def _document(row: sqlite3.Row) -> Document:
    return Document(row["id"], row["collection_id"], row["path"], row["sha256"], row["size"], row["mtime"],
                    row["kind"], row["pages"], row["status"], row["error"], row["indexed_at"])


def _chunk(row: sqlite3.Row) -> StoredChunk:
    return StoredChunk(row["id"], row["document_id"], row["ordinal"], row["text"], row["page_start"],
                       row["page_end"], row["line_start"], row["line_end"], tuple(json.loads(row["heading_path"])),
                       row["token_count"])


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A collection needs a name.", "Type at least one character.")
    return name[:200]


class DocumentsRepository:
    """Collections, documents, chunks and vectors in `ember.db`. One instance per connection (per thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --- collections ----------------------------------------------------------------------
    def create_collection(self, name: str, *, embedding_model_path: str | None = None,
                          embedding_model_sha256: str | None = None, settings: Mapping | None = None) -> Collection:
        name = _clean_name(name)
        with database_errors("create the collection"):
            if self.conn.execute("SELECT 1 FROM collections WHERE name = ?", (name,)).fetchone():
                raise InvalidInput(f"There is already a collection named {name!r}.", "Pick another name.")
            cur = self.conn.execute(
                "INSERT INTO collections (name, created_at, embedding_model_path, embedding_model_sha256,"
                " settings_json) VALUES (?, ?, ?, ?, ?)",
                (name, time.time(), embedding_model_path, embedding_model_sha256,
                 json.dumps({**DEFAULT_SETTINGS, **(settings or {})}, sort_keys=True)),
            )
        return self.get_collection(cur.lastrowid)

    def get_collection(self, collection_id: int) -> Collection:
        row = self.conn.execute("SELECT * FROM collections WHERE id = ?", (collection_id,)).fetchone()
        if row is None:
            raise NotFound(f"Collection {collection_id} does not exist.")
        return _collection(row)

    def find_collection(self, name: str) -> Collection | None:
        row = self.conn.execute("SELECT * FROM collections WHERE name = ?", (name.strip(),)).fetchone()
        return _collection(row) if row else None

    def list_collections(self) -> list[Collection]:
        return [_collection(r) for r in self.conn.execute("SELECT * FROM collections ORDER BY name, id")]

    def rename_collection(self, collection_id: int, name: str) -> Collection:
        name = _clean_name(name)
        with database_errors("rename the collection"):
            other = self.conn.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
            if other and other["id"] != collection_id:
                raise InvalidInput(f"There is already a collection named {name!r}.", "Pick another name.")
            self.conn.execute("UPDATE collections SET name = ? WHERE id = ?", (name, collection_id))
        return self.get_collection(collection_id)

    @database_errors("delete the collection")
    def delete_collection(self, collection_id: int) -> None:
        """The collection and everything in it (sources, documents, chunks, FTS rows, vectors); not the files."""
        self.conn.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    def change_embedding(self, collection_id: int, model_path: str | None, model_sha256: str | None,
                         settings: Mapping | None = None) -> Collection:
        """Record another embedding model or other chunk settings. Unless the collection was built with
        exactly these, its chunks go (vectors of two models cannot be compared) and every document is
        marked `changed`, so the indexer redoes them all."""
        collection = self.get_collection(collection_id)
        settings = {**DEFAULT_SETTINGS, **(settings or {})}
        with Transaction(self.conn, "change the collection's embedding model"):
            if not collection.built_with(model_sha256, settings):
                self.conn.execute("DELETE FROM chunks WHERE document_id IN"
                                  " (SELECT id FROM documents WHERE collection_id = ?)", (collection_id,))
                self.conn.execute("UPDATE documents SET status = 'changed' WHERE collection_id = ?",
                                  (collection_id,))
                self.conn.execute("UPDATE collections SET embedding_dim = NULL, version = version + 1"
                                  " WHERE id = ?", (collection_id,))
            self.conn.execute(
                "UPDATE collections SET embedding_model_path = ?, embedding_model_sha256 = ?, settings_json = ?"
                " WHERE id = ?",
                (model_path, model_sha256, json.dumps(settings, sort_keys=True), collection_id),
            )
        return self.get_collection(collection_id)

    def versions(self, collection_ids: Iterable[int]) -> dict[int, int]:
        """Each existing collection's version (it goes up whenever its chunks change)."""
        ids = list(collection_ids)
        rows = self.conn.execute(
            f"SELECT id, version FROM collections WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
        return {row["id"]: row["version"] for row in rows}

    # --- sources --------------------------------------------------------------------------
    @database_errors("add the source to the collection")
    def add_source(self, collection_id: int, path: str, kind: str) -> Source:
        """A file or folder the user added; adding the same path twice keeps one row."""
        if kind not in SOURCE_KINDS:
            raise InvalidInput(f"Unknown source kind {kind!r}.")
        self.conn.execute(
            "INSERT INTO collection_sources (collection_id, path, kind, added_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (collection_id, path) DO UPDATE SET kind = excluded.kind",
            (collection_id, str(path), kind, time.time()),
        )
        row = self.conn.execute("SELECT * FROM collection_sources WHERE collection_id = ? AND path = ?",
                                (collection_id, str(path))).fetchone()
        return Source(row["id"], row["collection_id"], row["path"], row["kind"], row["added_at"])

    def list_sources(self, collection_id: int) -> list[Source]:
        rows = self.conn.execute("SELECT * FROM collection_sources WHERE collection_id = ? ORDER BY path",
                                 (collection_id,))
        return [Source(r["id"], r["collection_id"], r["path"], r["kind"], r["added_at"]) for r in rows]

    @database_errors("remove the source")
    def remove_source(self, source_id: int) -> None:
        """Only the source row: the indexer's next run removes the documents no source covers any more."""
        self.conn.execute("DELETE FROM collection_sources WHERE id = ?", (source_id,))

    # --- documents ------------------------------------------------------------------------
    def upsert_document(self, collection_id: int, path: str, *, sha256: str | None, size: int | None,
                        mtime: float | None, kind: str | None, pages: int | None = None,
                        status: str = "pending", error: str | None = None) -> Document:
        """Insert the file's row or update it in place (its chunks stay until they are replaced)."""
        if status not in DOCUMENT_STATUSES:
            raise InvalidInput(f"Unknown document status {status!r}.")
        with database_errors("save the document"):
            self.conn.execute(
                "INSERT INTO documents (collection_id, path, sha256, size, mtime, kind, pages, status, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (collection_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
                " mtime = excluded.mtime, kind = excluded.kind, pages = excluded.pages,"
                " status = excluded.status, error = excluded.error",
                (collection_id, str(path), sha256, size, mtime, kind, pages, status, error),
            )
        document = self.find_document(collection_id, path)
        assert document is not None
        return document

    @database_errors("save the document's status")
    def set_document_status(self, document_id: int, status: str, error: str | None = None) -> None:
        if status not in DOCUMENT_STATUSES:
            raise InvalidInput(f"Unknown document status {status!r}.")
        self.conn.execute("UPDATE documents SET status = ?, error = ? WHERE id = ?", (status, error, document_id))

    def get_document(self, document_id: int) -> Document:
        row = self.conn.execute("SELECT * FROM documents WHERE id = ?", (document_id,)).fetchone()
        if row is None:
            raise NotFound(f"Document {document_id} does not exist.")
        return _document(row)

    def find_document(self, collection_id: int, path: str) -> Document | None:
        row = self.conn.execute("SELECT * FROM documents WHERE collection_id = ? AND path = ?",
                                (collection_id, str(path))).fetchone()
        return _document(row) if row else None

    def list_documents(self, collection_id: int) -> list[Document]:
        rows = self.conn.execute("SELECT * FROM documents WHERE collection_id = ? ORDER BY path", (collection_id,))
        return [_document(r) for r in rows]

    def unchanged_paths(self, collection_id: int, sha256_by_path: Mapping[str, str]) -> set[str]:
        """The paths whose content is already indexed: same SHA-256 and status `indexed`. The indexer
        neither parses nor embeds them again."""
        known = {row["path"]: row["sha256"] for row in self.conn.execute(
            "SELECT path, sha256 FROM documents WHERE collection_id = ? AND status = 'indexed'", (collection_id,))}
        return {path for path, sha in sha256_by_path.items() if sha is not None and known.get(str(path)) == sha}

    def known_failures(self, collection_id: int, sha256_by_path: Mapping[str, str]) -> dict[str, str]:
        """The paths that failed before with the same content: path -> the reason it failed."""
        known = {row["path"]: (row["sha256"], row["error"]) for row in self.conn.execute(
            "SELECT path, sha256, error FROM documents WHERE collection_id = ? AND status = 'failed'",
            (collection_id,))}
        return {path: known[str(path)][1] or "It could not be read." for path, sha in sha256_by_path.items()
                if sha is not None and str(path) in known and known[str(path)][0] == sha}

    def same_stat(self, collection_id: int, stats: Mapping[str, tuple[int, float]]) -> dict[str, str]:
        """The paths whose indexed or failed row has this (size, mtime): path -> that status. The indexer
        takes them as unchanged without reading them."""
        rows = {row["path"]: row for row in self.conn.execute(
            "SELECT path, size, mtime, status FROM documents WHERE collection_id = ? AND status IN ('indexed', 'failed')"
            " AND sha256 IS NOT NULL", (collection_id,))}
        return {path: rows[path]["status"] for path, (size, mtime) in stats.items()
                if path in rows and rows[path]["size"] == size and rows[path]["mtime"] == mtime}

    def failure_reasons(self, collection_id: int, paths: Iterable[str]) -> dict[str, str]:
        wanted = {str(p) for p in paths}
        if not wanted:
            return {}
        rows = self.conn.execute("SELECT path, error FROM documents WHERE collection_id = ? AND status = 'failed'",
                                 (collection_id,))
        return {row["path"]: row["error"] or "It could not be read." for row in rows if row["path"] in wanted}

    @database_errors("save the document's size and time")
    def record_stat(self, collection_id: int, path: str, size: int, mtime: float) -> None:
        """A file touched but not changed (same SHA-256): its new size and time, so the next run need not hash it."""
        self.conn.execute("UPDATE documents SET size = ?, mtime = ? WHERE collection_id = ? AND path = ?",
                          (size, mtime, collection_id, str(path)))

    def mark_to_index(self, collection_id: int, paths: Iterable[str]) -> None:
        """Before a run reads them: a new file gets a `pending` row (the page lists it at once), an indexed
        one whose content changed becomes `changed` (its old chunks answer until the new ones replace
        them), a failed one being read again becomes `pending`."""
        with Transaction(self.conn, "list the files to index"):
            for path in paths:
                self.conn.execute(
                    "INSERT INTO documents (collection_id, path, status) VALUES (?, ?, 'pending')"
                    " ON CONFLICT (collection_id, path) DO UPDATE SET"
                    " status = CASE status WHEN 'indexed' THEN 'changed' WHEN 'failed' THEN 'pending' ELSE status END,"
                    " error = NULL", (collection_id, str(path)))

    def document_rows(self, collection_id: int) -> list[tuple[Document, int, int]]:
        """Each document with its chunk count and tokens, for the Documents page's table."""
        rows = self.conn.execute(
            "SELECT d.*, count(c.id) AS n_chunks, coalesce(sum(c.token_count), 0) AS n_tokens FROM documents d"
            " LEFT JOIN chunks c ON c.document_id = d.id WHERE d.collection_id = ? GROUP BY d.id ORDER BY d.path",
            (collection_id,))
        return [(_document(r), r["n_chunks"], r["n_tokens"]) for r in rows]

    def remove_document(self, document_id: int) -> None:
        """The row, its chunks, their FTS rows and vectors (cascades and the FTS delete trigger)."""
        with Transaction(self.conn, "remove the document from the index"):
            self._bump_version_of_document(document_id)
            self.conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))

    def remove_missing(self, collection_id: int, present_paths: Iterable[str]) -> list[str]:
        """Remove the documents whose file is gone (not in `present_paths`); returns their paths."""
        present = {str(p) for p in present_paths}
        gone = [d for d in self.list_documents(collection_id) if d.path not in present]
        with Transaction(self.conn, "remove deleted files from the index"):
            for document in gone:
                self.remove_document(document.id)
        return [d.path for d in gone]

    # --- chunks and vectors ---------------------------------------------------------------
    def replace_document_chunks(self, document_id: int, chunks: Sequence[ChunkLike], vectors) -> list[int]:
        """One unit: the document's old chunks, FTS rows and vectors go, these come in, and the document
        becomes `indexed`. An error anywhere leaves all of the old ones. `vectors`: one row per chunk
        (float32, the collection's dimension; the first document sets it). Returns the new chunk ids."""
        import numpy as np  # here, not at the top: the app's window paints before numpy loads

        matrix = np.asarray(vectors, dtype="<f4")
        if len(chunks) and (matrix.ndim != 2 or matrix.shape[0] != len(chunks)):
            raise InvalidInput(f"{len(chunks)} chunks need {len(chunks)} vectors; got an array of shape {matrix.shape}.")
        with Transaction(self.conn, "save the document's chunks"):
            document = self.get_document(document_id)
            collection = self.get_collection(document.collection_id)
            if len(chunks):
                dim = int(matrix.shape[1])
                if collection.embedding_dim is None:
                    self.conn.execute("UPDATE collections SET embedding_dim = ? WHERE id = ?", (dim, collection.id))
                elif collection.embedding_dim != dim:
                    raise InvalidInput(
                        f"These vectors have {dim} dimensions; the collection {collection.name!r} holds "
                        f"{collection.embedding_dim}.", "Index it again with the model that built it.")
            self.conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            ids = []
            for ordinal, (chunk, vector) in enumerate(zip(chunks, matrix, strict=False)):
                cur = self.conn.execute(
                    "INSERT INTO chunks (document_id, ordinal, text, page_start, page_end, line_start, line_end,"
                    " heading_path, token_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (document_id, ordinal, chunk.text, chunk.page_start, chunk.page_end, chunk.line_start,
                     chunk.line_end, json.dumps(list(chunk.heading_path), ensure_ascii=False), chunk.token_count),
                )
                self.conn.execute("INSERT INTO chunk_vectors (chunk_id, dim, vector) VALUES (?, ?, ?)",
                                  (cur.lastrowid, len(vector), vector.tobytes()))
                ids.append(cur.lastrowid)
            self.conn.execute("UPDATE documents SET status = 'indexed', error = NULL, indexed_at = ? WHERE id = ?",
                              (time.time(), document_id))
            self._bump_version_of_document(document_id)
        return ids

    def _bump_version_of_document(self, document_id: int) -> None:
        self.conn.execute("UPDATE collections SET version = version + 1"
                          " WHERE id = (SELECT collection_id FROM documents WHERE id = ?)", (document_id,))

    def chunks_of(self, document_id: int) -> list[StoredChunk]:
        rows = self.conn.execute("SELECT * FROM chunks WHERE document_id = ? ORDER BY ordinal", (document_id,))
        return [_chunk(r) for r in rows]

    def chunk_sources(self, chunk_ids: Iterable[int]) -> dict[int, ChunkSource]:
        """The chunks with these ids and their documents, by chunk id (ids that are gone are left out)."""
        ids = list(chunk_ids)
        if not ids:
            return {}
        rows = self.conn.execute(
            "SELECT c.*, d.collection_id, d.path, d.kind FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE c.id IN ({','.join('?' * len(ids))})", ids)
        return {r["id"]: ChunkSource(_chunk(r), r["collection_id"], r["path"], r["kind"]) for r in rows}

    def vectors(self, collection_id: int) -> tuple[np.ndarray, np.ndarray]:
        """All of a collection's vectors: (chunk ids as int64, an n × dim float32 matrix), by chunk id."""
        import numpy as np  # as above

        rows = self.conn.execute(
            "SELECT v.chunk_id, v.dim, v.vector FROM chunk_vectors v JOIN chunks c ON c.id = v.chunk_id"
            " JOIN documents d ON d.id = c.document_id WHERE d.collection_id = ? ORDER BY v.chunk_id",
            (collection_id,)).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        dim = rows[0]["dim"]
        ids = np.fromiter((r["chunk_id"] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r["vector"] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return ids, matrix.astype(np.float32, copy=False)

    def bm25(self, fts_query: str, collection_ids: Iterable[int], limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score; lower is better, as FTS5 gives it) of the best `limit` matches of an FTS5
        query in these collections. The query must be safe already (engine.rag.retrieve builds it)."""
        ids = list(collection_ids)
        if not fts_query or not ids:
            return []
        rows = self.conn.execute(
            "SELECT f.rowid AS chunk_id, f.rank AS score FROM chunks_fts f"
            " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
            f" WHERE chunks_fts MATCH ? AND d.collection_id IN ({','.join('?' * len(ids))})"
            " ORDER BY f.rank LIMIT ?",  # no tie-break column: it would stop FTS5 from sorting by rank itself
            (fts_query, *ids, limit)).fetchall()
        return [(r["chunk_id"], r["score"]) for r in rows]

    def chunk_count(self) -> int:
        """Chunks in the whole database (the N of BM25's IDF: one FTS table serves every collection)."""
        return self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def term_document_counts(self, terms: Iterable[str]) -> dict[str, int]:
        """How many chunks hold each term (FTS5's own tokens: lower case, no diacritics), from its index
        through an fts5vocab table of this connection. Costs a scan of the term's list of chunks."""
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_terms"
                          " USING fts5vocab(main, chunks_fts, row)")
        counts = {}
        for term in terms:
            row = self.conn.execute("SELECT doc FROM temp.chunks_fts_terms WHERE term = ?", (term,)).fetchone()
            counts[term] = row[0] if row else 0
        return counts

    # --- figures and checks ---------------------------------------------------------------
    def counts(self, collection_id: int) -> CollectionCounts:
        by_status = dict.fromkeys(DOCUMENT_STATUSES, 0)
        for row in self.conn.execute("SELECT status, count(*) AS n FROM documents WHERE collection_id = ?"
                                     " GROUP BY status", (collection_id,)):
            by_status[row["status"]] = row["n"]
        chunks, tokens, vectors = self.conn.execute(
            "SELECT count(c.id), coalesce(sum(c.token_count), 0), count(v.chunk_id) FROM documents d"
            " JOIN chunks c ON c.document_id = d.id LEFT JOIN chunk_vectors v ON v.chunk_id = c.id"
            " WHERE d.collection_id = ?", (collection_id,)).fetchone()
        return CollectionCounts(sum(by_status.values()), by_status, chunks, vectors, tokens)

    def integrity_report(self) -> IntegrityReport:
        """Checks across the whole database that the index is whole: every chunk has a vector and an
        FTS row, and nothing is left of a removed chunk (for the kill tests)."""
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        try:  # FTS5 compares its index with the content table; a mismatch is SQLITE_CORRUPT_VTAB
            self.conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)")
            consistent = True
        except sqlite3.DatabaseError as exc:
            if "malformed" not in str(exc):
                raise to_database_error(exc, "check the document index") from exc
            consistent = False
        return IntegrityReport(
            chunks_without_vector=one("SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM chunk_vectors)"),
            vectors_without_chunk=one("SELECT count(*) FROM chunk_vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)"),
            fts_rows_without_chunk=one("SELECT count(*) FROM chunks_fts_docsize WHERE id NOT IN (SELECT id FROM chunks)"),
            chunks_without_fts_row=one("SELECT count(*) FROM chunks WHERE id NOT IN (SELECT id FROM chunks_fts_docsize)"),
            fts_consistent=consistent,
        )
