"""Schema migrations, one function per version. Add a new function; never edit a released one.

A released migration is frozen: it spells every value out (no Python constant pasted into its SQL),
so a fresh database and an upgraded one end up with the same schema. tests/engine/test_migrations.py
holds a hash of the schema each one produces. To change a CHECK, write a new migration.
"""

from __future__ import annotations

import sqlite3

# For validation in Python. They must equal what the newest schema's CHECK constraints accept
# (a test compares them); adding a value here needs a migration that widens the CHECK.
MESSAGE_STATUSES = ("streaming", "complete", "cancelled", "interrupted", "error")
MODEL_SOURCES = ("hub", "folder", "starter", "added")
DOCUMENT_STATUSES = ("indexed", "changed", "failed", "pending")
SOURCE_KINDS = ("file", "folder")
DOCUMENT_MODES = ("retrieve", "whole")
QA_STATUSES = ("draft", "kept", "dropped")


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run several statements inside the caller's transaction (executescript would commit it)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise sqlite3.OperationalError(f"incomplete SQL statement in migration: {statement[:80]!r}")


def migrate_to_v1(conn: sqlite3.Connection) -> None:
    """Sessions, messages (a tree through parent_id, with provenance) + FTS5, presets, the model library."""
    run_script(
        conn,
        """
        CREATE TABLE sessions (
            id              INTEGER PRIMARY KEY,
            title           TEXT NOT NULL DEFAULT 'New chat',
            created_at      REAL NOT NULL,
            updated_at      REAL NOT NULL,
            system_prompt   TEXT NOT NULL DEFAULT '',
            sampling_json   TEXT NOT NULL DEFAULT '{}',
            context_length  INTEGER,
            model_path      TEXT,
            current_leaf_id INTEGER,
            deleted_at      REAL
        );
        CREATE INDEX sessions_by_update ON sessions(deleted_at, updated_at DESC);

        CREATE TABLE messages (
            id            INTEGER PRIMARY KEY,
            session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            parent_id     INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            role          TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content       TEXT NOT NULL DEFAULT '',
            status        TEXT NOT NULL DEFAULT 'complete'
                          CHECK (status IN ('streaming', 'complete', 'cancelled', 'interrupted', 'error')),
            created_at    REAL NOT NULL,
            updated_at    REAL NOT NULL,
            model_name    TEXT,
            model_sha256  TEXT,
            quantization  TEXT,
            template_hash TEXT,
            sampling_json TEXT,
            seed          INTEGER,
            stats_json    TEXT,
            error         TEXT
        );
        CREATE INDEX messages_by_parent ON messages(session_id, parent_id, id);

        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;

        CREATE TABLE presets (
            id            INTEGER PRIMARY KEY,
            name          TEXT NOT NULL UNIQUE,
            system_prompt TEXT NOT NULL,
            sampling_json TEXT NOT NULL DEFAULT '{}',
            created_at    REAL NOT NULL
        );

        CREATE TABLE models (
            id              INTEGER PRIMARY KEY,
            path            TEXT NOT NULL UNIQUE,
            size            INTEGER NOT NULL,
            mtime           REAL NOT NULL,
            sha256          TEXT,
            source          TEXT NOT NULL CHECK (source IN ('hub', 'folder', 'starter', 'added')),
            repo_id         TEXT,
            inspection_json TEXT,
            measured_tps    REAL,
            added_at        REAL NOT NULL
        );
        """
    )


def migrate_to_v2(conn: sqlite3.Connection) -> None:
    """`messages.model_path`: the file a reply was made with, so the model's SHA-256 reaches the reply
    whenever the library learns it (after a restart, on another connection, in either order).

    Two triggers derive it instead of a list kept in memory. Whatever writes `models.sha256` (the
    lazy hash, a download's verified sidecar) fills every reply of that file still without a hash,
    and a reply written after the hash is known takes it at insert. Triggers rather than a call in
    each writer: no writer can forget, and the fill commits in the same statement as the hash.
    `created_at >= mtime`: a reply older than the file's current content was made with a file
    that is gone; it keeps no hash rather than a wrong one.
    """
    run_script(
        conn,
        """
        ALTER TABLE messages ADD COLUMN model_path TEXT;
        CREATE INDEX messages_awaiting_hash ON messages(model_path) WHERE model_sha256 IS NULL;

        CREATE TRIGGER models_sha256_fills_replies AFTER UPDATE OF sha256 ON models
        WHEN new.sha256 IS NOT NULL BEGIN
            UPDATE messages SET model_sha256 = new.sha256
            WHERE model_path = new.path AND model_sha256 IS NULL AND created_at >= new.mtime;
        END;
        CREATE TRIGGER messages_take_known_sha256 AFTER INSERT ON messages
        WHEN new.model_path IS NOT NULL AND new.model_sha256 IS NULL BEGIN
            UPDATE messages SET model_sha256 = (SELECT sha256 FROM models WHERE path = new.model_path)
            WHERE id = new.id AND EXISTS (SELECT 1 FROM models WHERE path = new.model_path
                                          AND sha256 IS NOT NULL AND new.created_at >= mtime);
        END;
        """
    )


def migrate_to_v3(conn: sqlite3.Connection) -> None:
    """Documents: collections (with the embedding model and chunk settings that built them), the files and
    folders the user added, one row per indexed file, its chunks with FTS5, and one vector per chunk.

    `chunks_fts` is an external-content FTS5 table over `chunks.text`, kept in step by triggers as
    `messages_fts` is; deleting a document cascades to its chunks, whose delete trigger removes their
    FTS rows, and to their vectors. `collections.version` goes up with every change of a collection's
    chunks, so an in-memory vector matrix knows when to reload.
    """
    run_script(
        conn,
        """
        CREATE TABLE collections (
            id                     INTEGER PRIMARY KEY,
            name                   TEXT NOT NULL UNIQUE,
            created_at             REAL NOT NULL,
            embedding_model_path   TEXT,
            embedding_model_sha256 TEXT,
            embedding_dim          INTEGER,
            settings_json          TEXT NOT NULL DEFAULT '{}',
            version                INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE collection_sources (
            id            INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            path          TEXT NOT NULL,
            kind          TEXT NOT NULL CHECK (kind IN ('file', 'folder')),
            added_at      REAL NOT NULL,
            UNIQUE (collection_id, path)
        );

        CREATE TABLE documents (
            id            INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            path          TEXT NOT NULL,
            sha256        TEXT,
            size          INTEGER,
            mtime         REAL,
            kind          TEXT,
            pages         INTEGER,
            status        TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('indexed', 'changed', 'failed', 'pending')),
            error         TEXT,
            indexed_at    REAL,
            UNIQUE (collection_id, path)
        );

        CREATE TABLE chunks (
            id           INTEGER PRIMARY KEY,
            document_id  INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal      INTEGER NOT NULL,
            text         TEXT NOT NULL,
            page_start   INTEGER,
            page_end     INTEGER,
            line_start   INTEGER,
            line_end     INTEGER,
            heading_path TEXT NOT NULL DEFAULT '[]',
            token_count  INTEGER NOT NULL,
            UNIQUE (document_id, ordinal)
        );

        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END;

        CREATE TABLE chunk_vectors (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            dim      INTEGER NOT NULL,
            vector   BLOB NOT NULL
        );
        """
    )


def migrate_to_v4(conn: sqlite3.Connection) -> None:
    """Documents in chat and the retrieval bench.

    `session_documents`: how a chat uses its collections (`retrieve` the best chunks, or put the
    `whole` collection in) and how many chunks; `session_collections`: which collections a chat has.
    `message_sources`: for a reply, every chunk retrieval found, in rank order, copied (path, pages or
    lines, text), so a citation still opens the right place after the file is indexed again;
    `number` is the [n] it had in the prompt, NULL when it was cut by the budget (`cut_reason`).
    `message_retrievals`: the question that was searched and how. `qa_pairs`: the retrieval bench's
    questions, each with the chunk it was written from (copied too) and the user's review.
    """
    run_script(
        conn,
        """
        CREATE TABLE session_documents (
            session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            mode       TEXT NOT NULL DEFAULT 'retrieve' CHECK (mode IN ('retrieve', 'whole')),
            k          INTEGER NOT NULL DEFAULT 5
        );

        CREATE TABLE session_collections (
            session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            PRIMARY KEY (session_id, collection_id)
        );

        CREATE TABLE message_retrievals (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
            query      TEXT NOT NULL,
            mode       TEXT NOT NULL,
            k          INTEGER NOT NULL,
            seconds    REAL,
            created_at REAL NOT NULL
        );

        CREATE TABLE message_sources (
            id            INTEGER PRIMARY KEY,
            message_id    INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            rank          INTEGER NOT NULL,
            number        INTEGER,
            chunk_id      INTEGER,
            collection_id INTEGER,
            path          TEXT NOT NULL,
            kind          TEXT,
            page_start    INTEGER,
            page_end      INTEGER,
            line_start    INTEGER,
            line_end      INTEGER,
            heading_path  TEXT NOT NULL DEFAULT '[]',
            text          TEXT NOT NULL,
            score         REAL,
            bm25_rank     INTEGER,
            vector_rank   INTEGER,
            similarity    REAL,
            tokens        INTEGER,
            cut_reason    TEXT,
            UNIQUE (message_id, rank)
        );
        CREATE INDEX message_sources_by_number ON message_sources(message_id, number);

        CREATE TABLE qa_pairs (
            id            INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            question      TEXT NOT NULL,
            answer        TEXT NOT NULL DEFAULT '',
            status        TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'kept', 'dropped')),
            chunk_id      INTEGER,
            path          TEXT NOT NULL,
            page_start    INTEGER,
            page_end      INTEGER,
            line_start    INTEGER,
            line_end      INTEGER,
            chunk_text    TEXT NOT NULL,
            created_at    REAL NOT NULL,
            updated_at    REAL NOT NULL
        );
        CREATE INDEX qa_pairs_by_collection ON qa_pairs(collection_id, status);
        """
    )


def migrate_to_v5(conn: sqlite3.Connection) -> None:
    """A LoRA adapter per chat.

    `sessions.adapter_path`: the GGUF adapter a chat uses on its model (NULL: the base model alone),
    at `adapter_scale` (its strength). The same two columns on `messages` record, as provenance, which
    adapter and strength made a reply, so an answer can be told apart from the base model's.
    """
    run_script(
        conn,
        """
        ALTER TABLE sessions ADD COLUMN adapter_path TEXT;
        ALTER TABLE sessions ADD COLUMN adapter_scale REAL NOT NULL DEFAULT 1.0;
        ALTER TABLE messages ADD COLUMN adapter_path TEXT;
        ALTER TABLE messages ADD COLUMN adapter_scale REAL;
        """
    )
