"""Released migrations are frozen; the Python value lists match the newest CHECKs."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import pytest

from engine.store import db as store_db
from engine.store import schema
from engine.store.db import SCHEMA_VERSION

FROZEN = "released migrations are frozen: add a new migration instead"

# sha256 of schema_dump() after migrations 1..N on an empty database. v1's is the schema Ember
# shipped with (checked against the foundation's code before its values were written out).
RELEASED = {
    1: "fb00c6fea6c5944a23b42d775be63b09f6b044ab362740ba0587b1dac9e32826",
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
    # and the CHECKs are live: a value outside the list is refused
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO models (path, size, mtime, source, added_at) VALUES ('x', 1, 1, 'adapter', 0)")
    conn.close()

