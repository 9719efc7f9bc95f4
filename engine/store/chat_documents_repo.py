"""All SQL for documents in chat: which collections a chat uses and how, and what each reply was given.

A reply's sources are copied when the reply is written (path, pages or lines, text, ranks), not
pointed to: re-indexing a file gives its chunks new ids, and a citation must still open the passage
the model read. Rank order is retrieval's; `number` is the [n] the source had in the prompt, None
when the context budget cut it (then `cut_reason` says why).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InvalidInput
from engine.store.db import Transaction, database_errors
from engine.store.schema import DOCUMENT_MODES

DEFAULT_K = 5
MAX_K = 50


@dataclass(frozen=True)
class ChatDocuments:
    """How one chat uses documents: its collections, `retrieve` (the k best chunks) or `whole`."""

    collection_ids: tuple[int, ...] = ()
    mode: str = "retrieve"
    k: int = DEFAULT_K

    @property
    def active(self) -> bool:
        return bool(self.collection_ids)


@dataclass(frozen=True)
class MessageSource:
    """One chunk that retrieval found for a reply (what a citation opens and the inspector lists)."""

    rank: int
    number: int | None
    chunk_id: int | None
    collection_id: int | None
    path: str
    kind: str | None
    page_start: int | None
    page_end: int | None
    line_start: int | None
    line_end: int | None
    heading_path: tuple[str, ...]
    text: str
    score: float | None = None
    bm25_rank: int | None = None
    vector_rank: int | None = None
    similarity: float | None = None
    tokens: int | None = None
    cut_reason: str | None = None

    @property
    def in_prompt(self) -> bool:
        return self.number is not None

    @property
    def location(self) -> str:
        """Where it is, as a person says it: "report.pdf, page 3", "notes.md, lines 10-24"."""
        name = Path(self.path).name
        if self.page_start is not None:
            if self.page_end is not None and self.page_end != self.page_start:
                return f"{name}, pages {self.page_start}-{self.page_end}"
            return f"{name}, page {self.page_start}"
        if self.line_start is not None:
            if self.line_end is None or self.line_end == self.line_start:
                return f"{name}, line {self.line_start}"
            return f"{name}, lines {self.line_start}-{self.line_end}"
        return name


@dataclass(frozen=True)
class MessageRetrieval:
    """The search behind a reply: the question as searched, the mode, k and how long it took."""

    message_id: int
    query: str
    mode: str
    k: int
    seconds: float | None
    sources: list[MessageSource] = field(default_factory=list)


def _source(row: sqlite3.Row) -> MessageSource:
    return MessageSource(row["rank"], row["number"], row["chunk_id"], row["collection_id"], row["path"], row["kind"],
                         row["page_start"], row["page_end"], row["line_start"], row["line_end"],
                         tuple(json.loads(row["heading_path"])), row["text"], row["score"], row["bm25_rank"],
                         row["vector_rank"], row["similarity"], row["tokens"], row["cut_reason"])


class ChatDocumentsRepository:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --- a chat's collections -------------------------------------------------------------
    def settings(self, session_id: int) -> ChatDocuments:
        row = self.conn.execute("SELECT mode, k FROM session_documents WHERE session_id = ?", (session_id,)).fetchone()
        ids = tuple(r["collection_id"] for r in self.conn.execute(
            "SELECT sc.collection_id FROM session_collections sc JOIN collections c ON c.id = sc.collection_id"
            " WHERE sc.session_id = ? ORDER BY c.name, c.id", (session_id,)))
        if row is None:
            return ChatDocuments(ids)
        return ChatDocuments(ids, row["mode"], row["k"])

    def save_settings(self, session_id: int, collection_ids: Iterable[int], mode: str = "retrieve",
                      k: int = DEFAULT_K) -> ChatDocuments:
        """Replace the chat's collections and mode in one unit."""
        if mode not in DOCUMENT_MODES:
            raise InvalidInput(f"Unknown documents mode {mode!r}; use one of {', '.join(DOCUMENT_MODES)}.")
        if not 1 <= int(k) <= MAX_K:
            raise InvalidInput(f"The number of chunks must be between 1 and {MAX_K}.")
        with Transaction(self.conn, "save the chat's documents"):
            self.conn.execute(
                "INSERT INTO session_documents (session_id, mode, k) VALUES (?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET mode = excluded.mode, k = excluded.k",
                (session_id, mode, int(k)))
            self.conn.execute("DELETE FROM session_collections WHERE session_id = ?", (session_id,))
            self.conn.executemany("INSERT INTO session_collections (session_id, collection_id) VALUES (?, ?)",
                                  [(session_id, cid) for cid in dict.fromkeys(collection_ids)])
        return self.settings(session_id)

    # --- what a reply was given -----------------------------------------------------------
    def save_retrieval(self, message_id: int, query: str, mode: str, k: int, seconds: float | None,
                       sources: Sequence[MessageSource]) -> None:
        with Transaction(self.conn, "save the reply's sources"):
            self.conn.execute("DELETE FROM message_sources WHERE message_id = ?", (message_id,))
            self.conn.execute(
                "INSERT OR REPLACE INTO message_retrievals (message_id, query, mode, k, seconds, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (message_id, query, mode, k, seconds, time.time()))
            self.conn.executemany(
                "INSERT INTO message_sources (message_id, rank, number, chunk_id, collection_id, path, kind,"
                " page_start, page_end, line_start, line_end, heading_path, text, score, bm25_rank, vector_rank,"
                " similarity, tokens, cut_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(message_id, s.rank, s.number, s.chunk_id, s.collection_id, s.path, s.kind, s.page_start,
                  s.page_end, s.line_start, s.line_end, json.dumps(list(s.heading_path), ensure_ascii=False),
                  s.text, s.score, s.bm25_rank, s.vector_rank, s.similarity, s.tokens, s.cut_reason)
                 for s in sources])

    def retrieval(self, message_id: int) -> MessageRetrieval | None:
        row = self.conn.execute("SELECT * FROM message_retrievals WHERE message_id = ?", (message_id,)).fetchone()
        if row is None:
            return None
        return MessageRetrieval(row["message_id"], row["query"], row["mode"], row["k"], row["seconds"],
                                self.sources(message_id))

    def sources(self, message_id: int) -> list[MessageSource]:
        rows = self.conn.execute("SELECT * FROM message_sources WHERE message_id = ? ORDER BY rank", (message_id,))
        return [_source(r) for r in rows]

    @database_errors("read the replies' sources")
    def cited_sources(self, message_ids: Iterable[int]) -> dict[int, list[MessageSource]]:
        """The sources that were in the prompt, by [n], for each of these replies that has any."""
        ids = list(message_ids)
        if not ids:
            return {}
        found: dict[int, list[MessageSource]] = {}
        rows = self.conn.execute(
            f"SELECT * FROM message_sources WHERE number IS NOT NULL AND message_id IN ({','.join('?' * len(ids))})"
            " ORDER BY message_id, number", ids)
        for row in rows:
            found.setdefault(row["message_id"], []).append(_source(row))
        return found
