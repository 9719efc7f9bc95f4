"""Released migrations are frozen; the Python value lists match the newest CHECKs; v1 -> v2 keeps every row."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import pytest

from engine.store import db as store_db
from engine.store import schema
from engine.store.chats import ChatRepository
from engine.store.db import SCHEMA_VERSION, connect, user_version

FROZEN = "released migrations are frozen: add a new migration instead"

# sha256 of schema_dump() after migrations 1..N on an empty database. v1's is the schema Ember
# shipped with (checked against the foundation's code before its values were written out).
RELEASED = {
    1: "fb00c6fea6c5944a23b42d775be63b09f6b044ab362740ba0587b1dac9e32826",
    2: "1789b01e7e31e7ae5d6da5289b110653ad0b0b2774022844633c020033ad0836",
    3: "607ff27e716665f523449b564e32a4f10ab593bcacf524f39cdd0b9d2a28cac4",
    4: "3e457b99ec57d0bdbe782872c2bb41aa22b5703c7c1cdad630b865f1d26242e1",
    5: "f89ef3a49a302bb136eba27c03c5e6ce8cf9a5dab763675027116a91e48535e4",
}


def schema_dump(conn: sqlite3.Connection) -> str:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    return "\n".join(f"{kind} {name} {table} {sql}" for kind, name, table, sql in rows)


def migrated(version: int, path=":memory:") -> sqlite3.Connection:
    """A database made by the migration functions 1..version (no rows)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for target in range(1, version + 1):
        conn.execute("BEGIN")
        store_db.MIGRATIONS[target - 1](conn)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute("COMMIT")
    return conn


def test_every_migration_is_released_and_frozen():
    assert sorted(RELEASED) == list(range(1, SCHEMA_VERSION + 1)), (
        "a new migration needs its schema hash in RELEASED (then it is frozen too)")
    for version, expected in RELEASED.items():
        conn = migrated(version)
        digest = hashlib.sha256(schema_dump(conn).encode()).hexdigest()
        conn.close()
        assert digest == expected, f"migration v{version} now makes another schema; {FROZEN}"


def check_values(conn: sqlite3.Connection, table: str, column: str) -> tuple[str, ...]:
    """The values the CHECK (column IN (...)) of a table accepts, read from its SQL."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
    found = re.findall(rf"CHECK\s*\(\s*{column}\s+IN\s*\(([^)]*)\)\s*\)", sql)
    assert len(found) == 1, f"expected one CHECK on {table}.{column}"
    return tuple(re.findall(r"'([^']*)'", found[0]))


def test_python_value_lists_equal_the_newest_checks():
    conn = migrated(SCHEMA_VERSION)
    assert check_values(conn, "messages", "status") == schema.MESSAGE_STATUSES
    assert check_values(conn, "models", "source") == schema.MODEL_SOURCES
    assert check_values(conn, "documents", "status") == schema.DOCUMENT_STATUSES
    assert check_values(conn, "collection_sources", "kind") == schema.SOURCE_KINDS
    assert check_values(conn, "session_documents", "mode") == schema.DOCUMENT_MODES
    assert check_values(conn, "qa_pairs", "status") == schema.QA_STATUSES
    # and the CHECKs are live: a value outside the list is refused
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO models (path, size, mtime, source, added_at) VALUES ('x', 1, 1, 'adapter', 0)")
    conn.close()


def test_a_v1_database_with_rows_migrates_to_v2_keeping_every_row(ember_home):
    path = ember_home / "ember.db"
    conn = migrated(1, path)
    conn.execute("INSERT INTO sessions (id, title, created_at, updated_at, current_leaf_id) VALUES (1, 'Old', 1, 2, 2)")
    conn.execute("INSERT INTO messages (id, session_id, parent_id, role, content, created_at, updated_at)"
                 " VALUES (1, 1, NULL, 'user', 'sourdough question', 1, 1)")
    conn.execute("INSERT INTO messages (id, session_id, parent_id, role, content, status, created_at, updated_at,"
                 " model_name, model_sha256) VALUES (2, 1, 1, 'assistant', 'an answer', 'interrupted', 2, 2,"
                 " 'm.gguf', NULL)")
    conn.execute("INSERT INTO presets (name, system_prompt, created_at) VALUES ('Terse', 'Be brief.', 1)")
    conn.execute("INSERT INTO models (path, size, mtime, source, added_at) VALUES ('/m.gguf', 10, 1, 'added', 1)")
    before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
              for t in ("sessions", "messages", "presets", "models")}
    conn.close()

    conn = connect(path)
    assert user_version(conn) == SCHEMA_VERSION
    after = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in before}
    # + model_path (v2) and the adapter (v5), empty
    assert after["messages"] == [(*row, None, None, None) for row in before["messages"]]
    assert after["sessions"] == [(*row, None, 1.0) for row in before["sessions"]]  # no adapter, strength 1
    assert {t: after[t] for t in ("presets", "models")} == {t: before[t] for t in ("presets", "models")}
    repo = ChatRepository(conn)
    assert [h.message_id for h in repo.search("sourdough")] == [1]  # the FTS index came along
    assert [m.content for m in repo.branch(1)] == ["sourdough question", "an answer"]
    conn.close()

    backup = sqlite3.connect(path.with_name("ember.db.bak-v1"))
    assert backup.execute("PRAGMA user_version").fetchone()[0] == 1
    assert backup.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
    backup.close()


def test_a_v2_database_with_rows_gains_the_document_tables_empty(ember_home):
    path = ember_home / "ember.db"
    conn = migrated(2, path)
    conn.execute("INSERT INTO sessions (id, title, created_at, updated_at) VALUES (1, 'Kept', 1, 2)")
    conn.execute("INSERT INTO messages (id, session_id, role, content, created_at, updated_at, model_path)"
                 " VALUES (1, 1, 'user', 'pumpernickel recipe', 1, 1, '/m.gguf')")
    conn.close()

    conn = connect(path)
    assert user_version(conn) == SCHEMA_VERSION
    assert [h.message_id for h in ChatRepository(conn).search("pumpernickel")] == [1]
    for table in ("collections", "collection_sources", "documents", "chunks", "chunk_vectors"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    conn.execute("INSERT INTO collections (name, created_at) VALUES ('Notes', 1)")
    conn.execute("INSERT INTO documents (collection_id, path) VALUES (1, '/n.txt')")
    conn.execute("INSERT INTO chunks (document_id, ordinal, text, token_count) VALUES (1, 0, 'rye bread', 2)")
    assert [tuple(r) for r in conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'rye'")] == [(1,)]
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO documents (collection_id, path, status) VALUES (1, '/m.txt', 'done')")
    conn.close()
