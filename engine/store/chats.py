"""All SQL for chat sessions and messages.

Messages form a tree through `parent_id`: a regenerated reply or an edited prompt is a sibling of
the one it replaces, so every branch is kept. `sessions.current_leaf_id` says which branch is shown.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field

from engine.errors import InvalidInput, NotFound
from engine.jobs import GenerationStats
from engine.store.db import Transaction, database_errors
from engine.store.schema import MESSAGE_STATUSES


@dataclass(frozen=True)
class Session:
    id: int
    title: str
    created_at: float
    updated_at: float
    system_prompt: str = ""
    sampling: dict = field(default_factory=dict)
    context_length: int | None = None
    model_path: str | None = None
    current_leaf_id: int | None = None
    adapter_path: str | None = None  # a GGUF LoRA adapter used on the model in this chat (None: the base alone)
    adapter_scale: float = 1.0


@dataclass(frozen=True)
class Provenance:
    """Where a reply came from: enough to tell later exactly which model and settings made it.

    `model_path` is the file it was made with; when `model_sha256` is unknown at the time, the
    database fills it in once the library hashes that file (see schema.migrate_to_v2)."""

    model_name: str | None = None
    model_sha256: str | None = None
    quantization: str | None = None
    template_hash: str | None = None
    sampling: dict | None = None
    seed: int | None = None
    model_path: str | None = None  # after these: callers build Provenance by position
    adapter_path: str | None = None  # the LoRA adapter on the model when the reply was made, and its strength
    adapter_scale: float | None = None


@dataclass(frozen=True)
class Message:
    id: int
    session_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    created_at: float
    provenance: Provenance = field(default_factory=Provenance)
    stats: GenerationStats | None = None
    error: str | None = None


@dataclass(frozen=True)
class SearchHit:
    session_id: int
    session_title: str
    message_id: int
    snippet: str


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        system_prompt=row["system_prompt"],
        sampling=json.loads(row["sampling_json"] or "{}"),
        context_length=row["context_length"],
        model_path=row["model_path"],
        current_leaf_id=row["current_leaf_id"],
        adapter_path=row["adapter_path"],
        adapter_scale=row["adapter_scale"],
    )


def _message(row: sqlite3.Row) -> Message:
    stats = json.loads(row["stats_json"]) if row["stats_json"] else None
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        parent_id=row["parent_id"],
        role=row["role"],
        content=row["content"],
        status=row["status"],
        created_at=row["created_at"],
        provenance=Provenance(
            model_name=row["model_name"],
            model_sha256=row["model_sha256"],
            model_path=row["model_path"],
            quantization=row["quantization"],
            template_hash=row["template_hash"],
            sampling=json.loads(row["sampling_json"]) if row["sampling_json"] else None,
            seed=row["seed"],
            adapter_path=row["adapter_path"],
            adapter_scale=row["adapter_scale"],
        ),
        stats=GenerationStats.from_dict(stats) if stats else None,
        error=row["error"],
    )


MAX_ADAPTER_SCALE = 4.0


class ChatRepository:
    """Sessions and messages in `ember.db`. One instance per connection (per thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # --- sessions -------------------------------------------------------------------------
    @database_errors("create the chat")
    def create_session(
        self, title: str = "New chat", system_prompt: str = "", sampling: dict | None = None,
        context_length: int | None = None, model_path: str | None = None,
    ) -> Session:
        now = time.time()
        cur = self.conn.execute(
            "INSERT INTO sessions (title, created_at, updated_at, system_prompt, sampling_json, context_length,"
            " model_path) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (title, now, now, system_prompt, json.dumps(sampling or {}), context_length, model_path),
        )
        return self.get_session(cur.lastrowid)

    def get_session(self, session_id: int) -> Session:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"Chat {session_id} does not exist.")
        return _session(row)

    def list_sessions(self) -> list[Session]:
        """Sessions not in the bin, newest activity first."""
        rows = self.conn.execute(
            "SELECT * FROM sessions WHERE deleted_at IS NULL ORDER BY updated_at DESC, id DESC"
        ).fetchall()
        return [_session(row) for row in rows]

    @database_errors("save the chat's settings")
    def update_session(self, session_id: int, **changes) -> Session:
        """Change title, system_prompt, sampling, context_length, model_path, adapter_path or adapter_scale."""
        columns = {"title": "title", "system_prompt": "system_prompt", "sampling": "sampling_json",
                   "context_length": "context_length", "model_path": "model_path",
                   "adapter_path": "adapter_path", "adapter_scale": "adapter_scale"}
        unknown = set(changes) - set(columns)
        if unknown:
            raise InvalidInput(f"Unknown session setting(s): {', '.join(sorted(unknown))}")
        if "title" in changes:
            title = (changes["title"] or "").strip()
            if not title:
                raise InvalidInput("A chat needs a name.", "Type at least one character.")
            changes["title"] = title[:200]
        if "sampling" in changes:
            changes["sampling"] = json.dumps(changes["sampling"] or {})
        if "adapter_path" in changes:
            changes["adapter_path"] = str(changes["adapter_path"]) if changes["adapter_path"] else None
        if "adapter_scale" in changes:
            changes["adapter_scale"] = _adapter_scale(changes["adapter_scale"])
        if changes:
            assignments = ", ".join(f"{columns[key]} = ?" for key in changes)
            self.conn.execute(
                f"UPDATE sessions SET {assignments}, updated_at = ? WHERE id = ?",
                (*changes.values(), time.time(), session_id),
            )
        return self.get_session(session_id)

    @database_errors("move the chat to the bin")
    def delete_session(self, session_id: int) -> None:
        """Move to the bin; `restore_session` undoes it, `purge_deleted` empties the bin."""
        self.conn.execute("UPDATE sessions SET deleted_at = ? WHERE id = ?", (time.time(), session_id))

    @database_errors("restore the chat")
    def restore_session(self, session_id: int) -> None:
        self.conn.execute("UPDATE sessions SET deleted_at = NULL WHERE id = ?", (session_id,))

    @database_errors("empty the bin")
    def purge_deleted(self, older_than_s: float = 0.0) -> int:
        cutoff = time.time() - older_than_s
        cur = self.conn.execute(
            "DELETE FROM sessions WHERE deleted_at IS NOT NULL AND deleted_at <= ?", (cutoff,)
        )
        return cur.rowcount

    @database_errors("switch the shown branch")
    def set_current_leaf(self, session_id: int, leaf_id: int | None) -> None:
        self.conn.execute("UPDATE sessions SET current_leaf_id = ? WHERE id = ?", (leaf_id, session_id))

    # --- messages -------------------------------------------------------------------------
    def add_message(
        self, session_id: int, parent_id: int | None, role: str, content: str, *,
        status: str = "complete", provenance: Provenance | None = None,
        stats: GenerationStats | None = None, created_at: float | None = None,
    ) -> Message:
        """Append a message under `parent_id` and make it the shown branch's leaf."""
        if status not in MESSAGE_STATUSES:
            raise InvalidInput(f"Unknown message status {status!r}.")
        p = provenance or Provenance()
        now = created_at if created_at is not None else time.time()
        with Transaction(self.conn, "save the message"):
            cur = self.conn.execute(
                "INSERT INTO messages (session_id, parent_id, role, content, status, created_at, updated_at,"
                " model_name, model_sha256, model_path, quantization, template_hash, sampling_json, seed,"
                " stats_json, adapter_path, adapter_scale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, parent_id, role, content, status, now, now, p.model_name, p.model_sha256,
                 p.model_path, p.quantization, p.template_hash,
                 json.dumps(p.sampling) if p.sampling is not None else None,
                 p.seed, json.dumps(stats.to_dict()) if stats else None, p.adapter_path, p.adapter_scale),
            )
            self.conn.execute(
                "UPDATE sessions SET current_leaf_id = ?, updated_at = ? WHERE id = ?",
                (cur.lastrowid, time.time(), session_id),
            )
            return self.get_message(cur.lastrowid)

    @database_errors("save the message")
    def update_message(
        self, message_id: int, *, content: str | None = None, status: str | None = None,
        stats: GenerationStats | None = None, error: str | None = None, seed: int | None = None,
    ) -> None:
        sets, values = ["updated_at = ?"], [time.time()]
        if seed is not None:
            sets.append("seed = ?")
            values.append(seed)
        if content is not None:
            sets.append("content = ?")
            values.append(content)
        if status is not None:
            if status not in MESSAGE_STATUSES:
                raise InvalidInput(f"Unknown message status {status!r}.")
            sets.append("status = ?")
            values.append(status)
        if stats is not None:
            sets.append("stats_json = ?")
            values.append(json.dumps(stats.to_dict()))
        if error is not None:
            sets.append("error = ?")
            values.append(error)
        self.conn.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*values, message_id))

    @database_errors("save the model's SHA-256")
    def delete_message(self, message_id: int) -> None:
        """Delete a message and its replies; the shown branch moves to its parent."""
        with Transaction(self.conn, "delete the message"):
            message = self.get_message(message_id)
            self.conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            self.conn.execute(
                "UPDATE sessions SET current_leaf_id = ?, updated_at = ? WHERE id = ?",
                (message.parent_id, time.time(), message.session_id),
            )

    def get_message(self, message_id: int) -> Message:
        row = self.conn.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"Message {message_id} does not exist.")
        return _message(row)

    def messages(self, session_id: int) -> list[Message]:
        """Every message of a session, all branches, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
        ).fetchall()
        return [_message(row) for row in rows]

    def children(self, session_id: int, parent_id: int | None) -> list[Message]:
        rows = self.conn.execute(
            "SELECT * FROM messages WHERE session_id = ? AND parent_id IS ? ORDER BY id",
            (session_id, parent_id),
        ).fetchall()
        return [_message(row) for row in rows]

    def sibling_ids(self, session_id: int) -> dict[int | None, list[int]]:
        """parent id -> its children's ids, oldest first: where each message sits among its alternatives."""
        tree: dict[int | None, list[int]] = {}
        for row in self.conn.execute("SELECT id, parent_id FROM messages WHERE session_id = ? ORDER BY id",
                                     (session_id,)):
            tree.setdefault(row["parent_id"], []).append(row["id"])
        return tree

    def branch(self, session_id: int, leaf_id: int | None = None) -> list[Message]:
        """The messages from the root down to `leaf_id` (default: the session's shown leaf)."""
        if leaf_id is None:
            leaf_id = self.get_session(session_id).current_leaf_id
        if leaf_id is None:
            return []
        rows = self.conn.execute(
            """
            WITH RECURSIVE up(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM messages WHERE id = ? AND session_id = ?
                UNION ALL
                SELECT m.id, m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.parent_id
            )
            SELECT messages.* FROM up JOIN messages ON messages.id = up.id ORDER BY up.depth DESC
            """,
            (leaf_id, session_id),
        ).fetchall()
        return [_message(row) for row in rows]

    def newest_leaf_under(self, message_id: int) -> int:
        """Follow the newest reply down from a message: the leaf shown when switching to its branch."""
        current = message_id
        while True:
            row = self.conn.execute(
                "SELECT id FROM messages WHERE parent_id = ? ORDER BY id DESC LIMIT 1", (current,)
            ).fetchone()
            if row is None:
                return current
            current = row["id"]

    @database_errors("recover the replies cut off last time")
    def recover_streaming(self) -> int:
        """At start-up (by the home's lock holder only): replies left `streaming` by a crash are `interrupted`."""
        cur = self.conn.execute(
            "UPDATE messages SET status = 'interrupted', updated_at = ? WHERE status = 'streaming'", (time.time(),)
        )
        return cur.rowcount

    # --- search ---------------------------------------------------------------------------
    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search over every message of the chats not in the bin."""
        query = _fts_query(text)
        if not query:
            return []
        rows = self.conn.execute(
            """
            SELECT m.session_id, s.title, m.id AS message_id,
                   snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet
            FROM messages_fts
            JOIN messages m ON m.id = messages_fts.rowid
            JOIN sessions s ON s.id = m.session_id
            WHERE messages_fts MATCH ? AND s.deleted_at IS NULL
            ORDER BY rank LIMIT ?
            """,
            (query, limit),
        ).fetchall()
        return [SearchHit(r["session_id"], r["title"], r["message_id"], r["snippet"]) for r in rows]


def _adapter_scale(value) -> float:
    """An adapter's strength: a number from 0 (no effect) to 4; anything else is refused with the range."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"The adapter strength {value!r} is not a number.", "Give a number from 0 to 4.") from None
    if not 0.0 <= scale <= MAX_ADAPTER_SCALE:
        raise InvalidInput(f"The adapter strength {scale:g} is out of range.", "Give a number from 0 to 4.")
    return scale


def _fts_query(text: str) -> str:
    """Turn what a user types into a safe FTS5 query: each word quoted, the last one a prefix."""
    words = [w.replace('"', '""') for w in text.split() if w.strip()]
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)
