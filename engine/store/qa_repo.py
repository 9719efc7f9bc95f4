"""All SQL for the retrieval bench's question/answer pairs (`qa_pairs`).

A pair is written from one chunk and copies it (path, pages or lines, text) instead of only pointing
at it: re-indexing a file gives its chunks new ids, and the bench must still know which passage the
question was about. The user reviews each pair: a `draft` (as written) is `kept` or `dropped`, and
its question and answer can be edited. Dropped pairs stay in the table, so that a later run of the
writer does not ask the same chunk again and the user can change their mind.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidInput, NotFound
from engine.store.db import Transaction, database_errors

STATUSES = ("draft", "kept", "dropped")
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 4000


@dataclass(frozen=True)
class QAPair:
    id: int
    collection_id: int
    question: str
    answer: str
    status: str
    chunk_id: int | None
    path: str
    page_start: int | None
    page_end: int | None
    line_start: int | None
    line_end: int | None
    chunk_text: str
    created_at: float
    updated_at: float

    @property
    def location(self) -> str:
        return location(self.path, self.page_start, self.page_end, self.line_start, self.line_end)


@dataclass(frozen=True)
class NewPair:
    """A pair to add, with the chunk it was written from (the chunk's location and text are copied)."""

    question: str
    answer: str
    chunk_id: int | None
    path: str
    chunk_text: str
    page_start: int | None = None
    page_end: int | None = None
    line_start: int | None = None
    line_end: int | None = None


def location(path: str, page_start: int | None, page_end: int | None, line_start: int | None,
             line_end: int | None) -> str:
    """Where a passage is, as a person says it: "guide.pdf, page 2", "notes.md, lines 3–9" (en dash)."""
    name = Path(path).name
    for word, first, last in (("page", page_start, page_end), ("line", line_start, line_end)):
        if first is not None:
            if last is None or last == first:
                return f"{name}, {word} {first}"
            return f"{name}, {word}s {first}–{last}"
    return name


def _pair(row: sqlite3.Row) -> QAPair:
    return QAPair(row["id"], row["collection_id"], row["question"], row["answer"], row["status"], row["chunk_id"],
                  row["path"], row["page_start"], row["page_end"], row["line_start"], row["line_end"],
                  row["chunk_text"], row["created_at"], row["updated_at"])


def _clean_question(question: str) -> str:
    question = " ".join((question or "").split())
    if not question:
        raise InvalidInput("A question cannot be empty.", "Type a question, or drop the pair instead.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"The question is {len(question)} characters long; at most {MAX_QUESTION_CHARS} fit.",
                           "Shorten it: a question a reader could ask in one breath works best.")
    return question


def _clean_answer(answer: str) -> str:
    answer = (answer or "").strip()
    if len(answer) > MAX_ANSWER_CHARS:
        raise InvalidInput(f"The answer is {len(answer)} characters long; at most {MAX_ANSWER_CHARS} fit.",
                           "Shorten it to the few words that answer the question.")
    return answer


def _check_statuses(statuses: Iterable[str]) -> list[str]:
    statuses = list(statuses)
    for status in statuses:
        if status not in STATUSES:
            raise InvalidInput(f"Unknown pair status {status!r}; use one of {', '.join(STATUSES)}.")
    return statuses


class QARepository:
    """The bench's pairs in `ember.db`. One instance per connection (per thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add_pairs(self, collection_id: int, pairs: Sequence[NewPair]) -> list[QAPair]:
        """Store these pairs as drafts, all or none; returns them with their ids."""
        cleaned = [(_clean_question(p.question), _clean_answer(p.answer), p) for p in pairs]
        ids = []
        with Transaction(self.conn, "save the questions"):
            if not self.conn.execute("SELECT 1 FROM collections WHERE id = ?", (collection_id,)).fetchone():
                raise NotFound(f"Collection {collection_id} does not exist.")
            now = time.time()
            for question, answer, p in cleaned:
                cur = self.conn.execute(
                    "INSERT INTO qa_pairs (collection_id, question, answer, status, chunk_id, path, page_start,"
                    " page_end, line_start, line_end, chunk_text, created_at, updated_at)"
                    " VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (collection_id, question, answer, p.chunk_id, p.path, p.page_start, p.page_end, p.line_start,
                     p.line_end, p.chunk_text, now, now))
                ids.append(cur.lastrowid)
        return [self.get(pair_id) for pair_id in ids]

    def get(self, pair_id: int) -> QAPair:
        row = self.conn.execute("SELECT * FROM qa_pairs WHERE id = ?", (pair_id,)).fetchone()
        if row is None:
            raise NotFound(f"Question {pair_id} does not exist.")
        return _pair(row)

    def list_pairs(self, collection_id: int, statuses: Iterable[str] = STATUSES) -> list[QAPair]:
        """The collection's pairs with these statuses, oldest first."""
        statuses = _check_statuses(statuses)
        if not statuses:
            return []
        rows = self.conn.execute(
            f"SELECT * FROM qa_pairs WHERE collection_id = ? AND status IN ({','.join('?' * len(statuses))})"
            " ORDER BY id", (collection_id, *statuses))
        return [_pair(r) for r in rows]

    def counts(self, collection_id: int) -> dict[str, int]:
        """How many pairs of each status (every status present, 0 when none)."""
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.conn.execute("SELECT status, count(*) AS n FROM qa_pairs WHERE collection_id = ?"
                                     " GROUP BY status", (collection_id,)):
            counts[row["status"]] = row["n"]
        return counts

    def asked_chunks(self, collection_id: int) -> set[tuple[str, str]]:
        """(path, chunk text) of every chunk a pair was written from, dropped ones included: the writer
        skips them, so that a second run asks about other passages."""
        rows = self.conn.execute("SELECT DISTINCT path, chunk_text FROM qa_pairs WHERE collection_id = ?",
                                 (collection_id,))
        return {(r["path"], r["chunk_text"]) for r in rows}

    def questions(self, collection_id: int) -> set[str]:
        """Every question of the collection, folded to lower case (to skip one written twice)."""
        rows = self.conn.execute("SELECT question FROM qa_pairs WHERE collection_id = ?", (collection_id,))
        return {r["question"].casefold() for r in rows}

    def edit(self, pair_id: int, *, question: str | None = None, answer: str | None = None) -> QAPair:
        """Change the question and/or the answer; the status stays."""
        pair = self.get(pair_id)
        question = _clean_question(question) if question is not None else pair.question
        answer = _clean_answer(answer) if answer is not None else pair.answer
        with database_errors("save the question"):
            self.conn.execute("UPDATE qa_pairs SET question = ?, answer = ?, updated_at = ? WHERE id = ?",
                              (question, answer, time.time(), pair_id))
        return self.get(pair_id)

    def set_status(self, pair_ids: Iterable[int], status: str) -> None:
        """Keep, drop, or return pairs to draft."""
        _check_statuses([status])
        ids = list(pair_ids)
        with Transaction(self.conn, "save the review of the questions"):
            now = time.time()
            for pair_id in ids:
                self.conn.execute("UPDATE qa_pairs SET status = ?, updated_at = ? WHERE id = ?",
                                  (status, now, pair_id))

    def delete(self, pair_ids: Iterable[int]) -> None:
        ids = list(pair_ids)
        with Transaction(self.conn, "delete the questions"):
            for pair_id in ids:
                self.conn.execute("DELETE FROM qa_pairs WHERE id = ?", (pair_id,))
